package s4u

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/crypto/etype"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/segmesh/segmesh/pkg/kdc"
	"github.com/segmesh/segmesh/pkg/krbhint"
	"github.com/segmesh/segmesh/pkg/krbtime"
)

// Defaults used when the matching Config field is zero.
const (
	DefaultTicketLifetime = 10 * time.Hour
	DefaultRenewLifetime  = 7 * 24 * time.Hour
	DefaultRefreshBefore  = 5 * time.Minute
	DefaultRefreshTimeout = 30 * time.Second
	// refreshFraction of a TGT's lifetime after which it is refreshed.
	refreshFraction = 0.8
	// minValidity is how long a TGT must still be valid to be used while
	// its refresh runs in the background.
	minValidity = time.Minute
	// failureBackoff spaces background refresh attempts after a failure.
	failureBackoff = 10 * time.Second
	// maxReferralHops bounds the chain of cross-realm TGTs.
	maxReferralHops = 4
	// PairTGTMaxAge is the oldest TGT S4U2Self uses without refreshing it
	// first: the pair's tickets end when the TGT ends, so a TGT at most an
	// hour old gives them at least the ticket lifetime less an hour. It
	// costs at most one TGT renewal an hour, and only while new pairs are
	// made.
	PairTGTMaxAge = time.Hour
)

// Config configures a Client.
type Config struct {
	// Realm is the service account's realm (the primary domain), e.g.
	// LAB.TEST. It is sent in upper case.
	Realm string
	// Service is the KCD service account's name (sAMAccountName), e.g.
	// svc_seg.
	Service string
	// Password is the service account's password. It is used only to derive
	// the key for the AS exchange and never appears in errors or logs.
	Password string
	// ArmorAccount, when set, armours the service account's AS exchange
	// with FAST (RFC 6113), using a TGT of this account, which is what an
	// authentication policy restricting where the service account may
	// authenticate from (AllowedToAuthenticateFrom) demands: typically the
	// gateway host's computer account, SEGGW$. Empty: no FAST.
	ArmorAccount string
	// ArmorPassword is ArmorAccount's password; like Password it is used
	// only to derive a key.
	ArmorPassword string
	// ServiceSPN, when set, names the service account in S4U2Self by one of
	// its SPNs (e.g. HTTP/seg.lab.test) instead of by Service.
	ServiceSPN string
	// Domains lists other realms that trust the primary realm. A user whose
	// UPN suffix is one of them is served through referral TGTs. The
	// Exchanger must know their KDCs.
	Domains []string
	// Exchanger sends requests to KDCs; required.
	Exchanger kdc.Exchanger
	// TicketLifetime is the lifetime requested for the TGT and tickets.
	// Zero means DefaultTicketLifetime; the KDC's policy caps it.
	TicketLifetime time.Duration
	// RenewLifetime is the renewable lifetime requested. Zero means
	// DefaultRenewLifetime.
	RenewLifetime time.Duration
	// RefreshBefore: a TGT is refreshed at 80% of its lifetime or when less
	// than RefreshBefore is left, whichever comes first. Zero means
	// DefaultRefreshBefore.
	RefreshBefore time.Duration
	// RefreshTimeout bounds a TGT refresh, which does not end when the
	// caller that started it goes away. Zero means DefaultRefreshTimeout.
	RefreshTimeout time.Duration
	// Etypes are the encryption types offered, most preferred first. Nil
	// means AES256, AES128 (18, 17), and RC4 (23) last with AllowRC4.
	Etypes []int32
	// AllowRC4 adds RC4-HMAC last to the default Etypes (it changes nothing
	// when Etypes is set). Off, a KDC offering only RC4 in ETYPE-INFO2
	// (a service account without AES keys, or a rogue KDC asking for a
	// timestamp under the NT hash to crack offline) gets no pre-
	// authentication: the AS exchange fails with KDC_ERR_ETYPE_NOSUPP.
	AllowRC4 bool
	// Now returns the current time. Nil means time.Now.
	Now func() time.Time
	// Logger receives events (never secrets). Nil discards.
	Logger *slog.Logger
	// Hooks observe KDC exchanges. Nil fields are skipped.
	Hooks Hooks
}

// Hooks observe a Client's KDC exchanges, for metrics and tests.
type Hooks struct {
	// OnExchange is called after every KDC exchange with its stage, the
	// realm asked and the error (nil on success; a *KDCError for a
	// KRB-ERROR).
	OnExchange func(stage Stage, realm string, err error)
}

// Client obtains tickets for users through S4U2Self and S4U2Proxy. It is
// safe for concurrent use. It does not cache service tickets (the ticket
// role does); it keeps one TGT per realm.
type Client struct {
	cfg    Config
	realm  string
	realms map[string]bool
	now    func() time.Time
	log    *slog.Logger

	keyMu sync.Mutex
	key   *longTermKey

	// armor gets the armor account's TGTs (ArmorAccount); nil: no FAST.
	armor *Client

	tgtMu sync.Mutex
	tgts  map[string]*tgtSlot
	bg    sync.WaitGroup // background TGT refreshes

	refusals sync.Map // "stage/code" of renewal refusals already logged

	// offset is the KDC's clock minus ours in nanoseconds, learnt from a
	// KRB_AP_ERR_SKEW; it moves only the times sent to KDCs (kdcNow).
	offset atomic.Int64
	// stamp makes the (ctime, cusec) of every TGS-REQ authenticator later
	// than the one before (a KDC's replay cache refuses a repeat).
	stamp krbtime.Stamper
}

// New validates cfg and returns a Client. It does no I/O: the first ticket
// request gets the TGT.
func New(cfg Config) (*Client, error) {
	var problems []string
	if cfg.Realm == "" {
		problems = append(problems, "realm is empty")
	}
	if cfg.Service == "" {
		problems = append(problems, "service account name is empty")
	}
	if strings.ContainsAny(cfg.Service, "@/\\") {
		problems = append(problems, fmt.Sprintf("service account name %q must be a bare sAMAccountName (no @, / or \\)", cfg.Service))
	}
	if cfg.Password == "" {
		problems = append(problems, "service account password is empty")
	}
	if cfg.Exchanger == nil {
		problems = append(problems, "no KDC exchanger")
	}
	if cfg.ArmorAccount != "" && cfg.ArmorPassword == "" {
		problems = append(problems, fmt.Sprintf("armor account %s has no password", cfg.ArmorAccount))
	}
	if strings.ContainsAny(cfg.ArmorAccount, "@/\\") {
		problems = append(problems, fmt.Sprintf("armor account name %q must be a bare sAMAccountName (no @, / or \\)", cfg.ArmorAccount))
	}
	if cfg.Etypes == nil {
		cfg.Etypes = []int32{etypeID.AES256_CTS_HMAC_SHA1_96, etypeID.AES128_CTS_HMAC_SHA1_96}
		if cfg.AllowRC4 {
			cfg.Etypes = append(cfg.Etypes, etypeID.RC4_HMAC)
		}
	}
	for _, e := range cfg.Etypes {
		if _, err := usableEtype(e); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if len(cfg.Etypes) == 0 {
		problems = append(problems, "no etype")
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("s4u: invalid config: %s", strings.Join(problems, "; "))
	}
	if cfg.TicketLifetime <= 0 {
		cfg.TicketLifetime = DefaultTicketLifetime
	}
	if cfg.RenewLifetime <= 0 {
		cfg.RenewLifetime = DefaultRenewLifetime
	}
	if cfg.RefreshBefore <= 0 {
		cfg.RefreshBefore = DefaultRefreshBefore
	}
	if cfg.RefreshTimeout <= 0 {
		cfg.RefreshTimeout = DefaultRefreshTimeout
	}
	c := &Client{
		cfg:    cfg,
		realm:  strings.ToUpper(cfg.Realm),
		realms: map[string]bool{strings.ToUpper(cfg.Realm): true},
		now:    cfg.Now,
		log:    cfg.Logger,
		tgts:   make(map[string]*tgtSlot),
	}
	for _, d := range cfg.Domains {
		c.realms[strings.ToUpper(d)] = true
	}
	if cfg.ArmorAccount != "" {
		a, err := New(Config{
			Realm: cfg.Realm, Service: cfg.ArmorAccount, Password: cfg.ArmorPassword, Exchanger: cfg.Exchanger,
			TicketLifetime: cfg.TicketLifetime, RenewLifetime: cfg.RenewLifetime, RefreshBefore: cfg.RefreshBefore,
			RefreshTimeout: cfg.RefreshTimeout, Etypes: cfg.Etypes, Now: cfg.Now, Logger: cfg.Logger, Hooks: cfg.Hooks,
		})
		if err != nil {
			return nil, fmt.Errorf("s4u: armor account: %w", err)
		}
		c.armor = a
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// Realm returns the primary realm in upper case.
func (c *Client) Realm() string { return c.realm }

// ServiceTicket returns a ticket to spn for user: S4U2Self, then
// S4U2Proxy. user is a UPN (sent as an enterprise name) or a bare account
// name of the primary realm; spn is service/host, optionally @REALM.
func (c *Client) ServiceTicket(ctx context.Context, user, spn string) (*Ticket, error) {
	self, err := c.S4U2Self(ctx, user)
	if err != nil {
		return nil, err
	}
	return c.S4U2Proxy(ctx, self, spn)
}

// ParseUser returns the principal name and realm S4U2Self names user by. A
// UPN (name@suffix) becomes a single-string NT-ENTERPRISE name, in the realm
// of its suffix when that is a configured realm and in the primary realm
// otherwise (the KDC resolves alternative UPN suffixes); a bare name is an
// NT-PRINCIPAL of the primary realm.
func (c *Client) ParseUser(user string) (types.PrincipalName, string, error) {
	if user == "" || strings.ContainsAny(user, "/\\") || strings.TrimSpace(user) != user {
		return types.PrincipalName{}, "", fmt.Errorf("s4u: user %q is not a UPN or account name", user)
	}
	i := strings.LastIndexByte(user, '@')
	if i < 0 {
		return types.PrincipalName{NameType: nametype.KRB_NT_PRINCIPAL, NameString: []string{user}}, c.realm, nil
	}
	if i == 0 || i == len(user)-1 {
		return types.PrincipalName{}, "", fmt.Errorf("s4u: user %q is not a UPN", user)
	}
	realm := strings.ToUpper(user[i+1:])
	if !c.realms[realm] {
		realm = c.realm
	}
	return types.PrincipalName{NameType: NameTypeEnterprise, NameString: []string{user}}, realm, nil
}

// S4U2Self returns a ticket to the service account itself for user
// (protocol transition, MS-SFU 3.1.5.1). For a user of another configured
// realm it first asks that realm's KDC, which answers with a referral TGT
// back to the primary realm (MS-SFU 3.1.5.1.1.2, 3.2.5.1.1).
func (c *Client) S4U2Self(ctx context.Context, user string) (*Ticket, error) {
	name, urealm, err := c.ParseUser(user)
	if err != nil {
		return nil, err
	}
	tgt := (*Ticket)(nil)
	if urealm != c.realm {
		xtgt, err := c.tgt(ctx, urealm)
		if err != nil {
			return nil, err
		}
		ref, err := c.s4u2self(ctx, StageReferral, xtgt, urealm, name, urealm)
		if err != nil {
			return nil, err
		}
		if !isTGTFor(ref.Ticket.SName, c.realm) {
			return nil, fmt.Errorf("s4u: %s: realm %s answered with a ticket for %s, want a referral TGT to %s",
				StageReferral, urealm, principalString(ref.Ticket.SName, ref.Ticket.Realm), c.realm)
		}
		tgt = ref
	} else {
		tgt, err = c.tgtWithin(ctx, c.realm, PairTGTMaxAge)
		if err != nil {
			return nil, err
		}
	}
	t, err := c.s4u2self(ctx, StageS4U2Self, tgt, c.realm, name, urealm)
	if err != nil {
		return nil, unmappedSuffixHint(err, user, c.realms)
	}
	if isTGTFor(t.Ticket.SName, "") {
		return nil, fmt.Errorf("s4u: %s: the KDC of %s referred %s to %s, a realm that is not configured: add that domain to kcd.domains with one of its domain controllers (it must trust the primary domain)",
			StageS4U2Self, c.realm, user, principalString(t.Ticket.SName, t.Ticket.Realm))
	}
	if err := c.checkUser(StageS4U2Self, name, urealm, t); err != nil {
		return nil, err
	}
	return t, nil
}

// unmappedSuffixHint words a C_PRINCIPAL_UNKNOWN at S4U2Self for a UPN whose
// suffix is not a configured realm: the primary realm's KDC was asked for the
// enterprise name (it resolves alternative UPN suffixes itself) and does not
// know it. The hint names the suffix, what was tried and the settings.
func unmappedSuffixHint(err error, user string, realms map[string]bool) error {
	var ke *KDCError
	i := strings.LastIndexByte(user, '@')
	if i < 0 || !errors.As(err, &ke) || ke.Code != errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN || realms[strings.ToUpper(user[i+1:])] {
		return err
	}
	suffix := user[i+1:]
	ke.Hint = fmt.Sprintf("the UPN suffix %s is not a configured domain, so the KDC of %s was asked for the enterprise name %s and does not know it: "+
		"check that the user's userPrincipalName is %s and that %s is a UPN suffix of the forest (uPNSuffixes); "+
		"if the suffix belongs to another domain, add that domain to kcd.domains, or map the suffix to its realm in segmesh.identity.upnSuffixRealms",
		suffix, ke.Realm, user, user, suffix)
	return err
}

// s4u2self sends one S4U2Self TGS-REQ to kdcRealm authenticated by tgt.
func (c *Client) s4u2self(ctx context.Context, stage Stage, tgt *Ticket, kdcRealm string, user types.PrincipalName, urealm string) (*Ticket, error) {
	forUser, err := NewPAForUser(user, urealm, tgt.SessionKey)
	if err != nil {
		return nil, fmt.Errorf("s4u: %s: %w", stage, err)
	}
	pacOpts, err := newPAPACOptions()
	if err != nil {
		return nil, fmt.Errorf("s4u: %s: %w", stage, err)
	}
	r := tgsRequest{
		realm:    kdcRealm,
		sname:    c.selfName(),
		tgt:      tgt,
		options:  []int{flags.Forwardable, flags.Renewable, flags.Canonicalize},
		padata:   []types.PAData{forUser, pacOpts},
		now:      c.now(),
		lifetime: c.cfg.TicketLifetime,
		renew:    c.cfg.RenewLifetime,
		etypes:   c.cfg.Etypes,
	}
	return c.tgsExchange(ctx, stage, kdcRealm, &r)
}

// S4U2Proxy returns a ticket to spn for the client of self, a ticket from
// S4U2Self (constrained delegation, MS-SFU 3.1.5.2): cname-in-addl-tkt with
// self as the additional ticket, and PA-PAC-OPTIONS announcing
// resource-based delegation.
func (c *Client) S4U2Proxy(ctx context.Context, self *Ticket, spn string) (*Ticket, error) {
	if self == nil || len(self.CName.NameString) == 0 {
		return nil, errors.New("s4u: S4U2Proxy needs the S4U2Self ticket")
	}
	sname, srealm, err := c.parseSPN(spn)
	if err != nil {
		return nil, err
	}
	if srealm != c.realm {
		return nil, fmt.Errorf("s4u: %s: target %s is in realm %s; only targets in %s are supported", StageS4U2Proxy, spn, srealm, c.realm)
	}
	tgt, err := c.tgt(ctx, c.realm)
	if err != nil {
		return nil, err
	}
	pacOpts, err := newPAPACOptions()
	if err != nil {
		return nil, fmt.Errorf("s4u: %s: %w", StageS4U2Proxy, err)
	}
	r := tgsRequest{
		realm:      c.realm,
		sname:      sname,
		tgt:        tgt,
		options:    []int{flags.Forwardable, flags.Renewable, flags.Canonicalize, OptionCNameInAddlTkt},
		padata:     []types.PAData{pacOpts},
		additional: []messages.Ticket{self.Ticket},
		now:        c.now(),
		lifetime:   c.cfg.TicketLifetime,
		renew:      c.cfg.RenewLifetime,
		etypes:     c.cfg.Etypes,
	}
	t, err := c.tgsExchange(ctx, StageS4U2Proxy, c.realm, &r)
	if err != nil {
		var ke *KDCError
		if errors.As(err, &ke) {
			// The catalogue's fix, with this account and SPN in its examples.
			p := krbhint.Params{Account: c.cfg.Service, SPN: spn}
			ke.Hint = krbhint.FixFor(ke.Stage, ke.Code, p)
			if ke.Code == errorcode.KDC_ERR_BADOPTION && !self.Forwardable() {
				ke.NotForwardable, ke.Hint = true, krbhint.NotForwardable(p)
			}
		}
		return nil, err
	}
	if isTGTFor(t.Ticket.SName, "") {
		return nil, fmt.Errorf("s4u: %s: the KDC answered with a referral to %s; cross-realm targets are not supported",
			StageS4U2Proxy, principalString(t.Ticket.SName, t.Ticket.Realm))
	}
	if !sameNameFold(t.SName, sname) || !strings.EqualFold(t.SRealm, srealm) {
		return nil, fmt.Errorf("s4u: %s: the KDC answered with a ticket for %s, not the target %s asked for", StageS4U2Proxy,
			principalString(t.SName, t.SRealm), principalString(sname, srealm))
	}
	if err := checkProxyClient(self, t); err != nil {
		return nil, err
	}
	return t, nil
}

// checkProxyClient refuses an S4U2Proxy reply whose client is not the
// client of the S4U2Self ticket (a KDC that ignores cname-in-addl-tkt
// returns a ticket for the service account).
func checkProxyClient(self, t *Ticket) error {
	if !sameName(self.CName, t.CName) || !strings.EqualFold(self.CRealm, t.CRealm) {
		return &WrongClientError{Stage: StageS4U2Proxy, Want: self.ClientString(), Got: t.ClientString()}
	}
	return nil
}

// tgsExchange builds, sends and opens one TGS exchange. The authenticator
// time is the KDC's (kdcNow), later than any sent before; a
// KRB_AP_ERR_SKEW is retried once with the KDC's time.
func (c *Client) tgsExchange(ctx context.Context, stage Stage, kdcRealm string, r *tgsRequest) (*Ticket, error) {
	for try := 0; ; try++ {
		r.now = c.stamp.Next(c.kdcNow())
		req, wire, err := r.build()
		if err != nil {
			return nil, fmt.Errorf("s4u: %s: %w", stage, err)
		}
		rep, err := c.exchange(ctx, stage, kdcRealm, wire)
		if err != nil {
			if try == 0 && c.adoptKDCTime(stage, kdcRealm, err) {
				continue
			}
			return nil, newKDCError(stage, kdcRealm, err)
		}
		t, err := openTGSRep(rep, r.tgt.SessionKey, req.ReqBody.Nonce, r.etypes)
		if err != nil {
			return nil, c.replyError(stage, kdcRealm, err)
		}
		return t, nil
	}
}

// kdcNow is the time to put in messages to KDCs: ours moved by the offset a
// KRB_AP_ERR_SKEW taught.
func (c *Client) kdcNow() time.Time { return c.now().Add(time.Duration(c.offset.Load())) }

// adoptKDCTime reports whether err is a KRB_AP_ERR_SKEW carrying the KDC's
// time, and if so keeps the difference to our clock for the times sent to
// KDCs, as MIT's libkrb5 does (kdc_timesync): the request can be retried
// once. The KRB-ERROR is not authenticated; a forged time only makes the
// next requests fail with KRB_AP_ERR_SKEW again, which then carries the
// real KDC's time.
func (c *Client) adoptKDCTime(stage Stage, realm string, err error) bool {
	var ke *kdc.KRBError
	if !errors.As(err, &ke) || ke.Code() != errorcode.KRB_AP_ERR_SKEW || ke.Msg.STime.IsZero() {
		return false
	}
	kdcTime := ke.Msg.STime.Add(time.Duration(ke.Msg.Susec) * time.Microsecond)
	off := kdcTime.Sub(c.now())
	c.offset.Store(int64(off))
	c.log.Warn("KDC reports clock skew; using its time for Kerberos requests (synchronise this host's clock with NTP)",
		"stage", string(stage), "realm", realm, "kdc", ke.KDC, "offset", off.Round(time.Millisecond).String())
	return true
}

// usableEtype returns gokrb5's implementation of an etype this package can
// use, or an error naming it. aes256-cts-hmac-sha384-192 (20) is refused:
// gokrb5 v8.4.4 gives it a 24-byte key where RFC 8009 has 32, so no
// exchange with it works ("incorrect keysize").
func usableEtype(e int32) (etype.EType, error) {
	if e == etypeID.AES256_CTS_HMAC_SHA384_192 {
		return nil, errors.New("etype 20 (aes256-cts-hmac-sha384-192) is not supported: gokrb5 v8.4.4 implements it with the wrong key size; use 18 (aes256-cts-hmac-sha1-96) or 17, which AD offers")
	}
	et, err := crypto.GetEtype(e)
	if err != nil {
		return nil, fmt.Errorf("etype %d is not supported: %w", e, err)
	}
	return et, nil
}

func (c *Client) exchange(ctx context.Context, stage Stage, realm string, wire []byte) ([]byte, error) {
	rep, err := c.cfg.Exchanger.Exchange(ctx, realm, wire)
	if h := c.cfg.Hooks.OnExchange; h != nil {
		herr := err
		if err != nil {
			herr = newKDCError(stage, realm, err)
		}
		h(stage, realm, herr)
	}
	return rep, err
}

// checkUser refuses an S4U2Self reply whose client is not the user: a KDC
// that ignores PA-FOR-USER returns a ticket for the service account itself.
// Names compare case-insensitively (AD names are); an enterprise name may
// come back as the account name the KDC resolved it to, but never as the
// service account.
func (c *Client) checkUser(stage Stage, want types.PrincipalName, wantRealm string, got *Ticket) error {
	bad := &WrongClientError{Stage: stage, Want: principalString(want, wantRealm), Got: got.ClientString()}
	if !strings.EqualFold(got.CRealm, wantRealm) || c.isServiceAccount(got.CName) {
		return bad
	}
	if sameNameFold(want, got.CName) {
		return nil
	}
	if want.NameType == NameTypeEnterprise && got.CName.NameType != NameTypeEnterprise && len(got.CName.NameString) == 1 {
		c.log.Debug("KDC canonicalized the enterprise name", "upn", want.NameString[0], "cname", got.ClientString())
		return nil
	}
	return bad
}

func (c *Client) isServiceAccount(n types.PrincipalName) bool {
	if len(n.NameString) == 1 {
		s := strings.TrimSuffix(unescapeAt(n.NameString[0]), "@"+c.realm)
		return strings.EqualFold(s, c.cfg.Service) || strings.EqualFold(strings.TrimSuffix(s, "$"), c.cfg.Service)
	}
	return sameNameFold(n, c.selfName())
}

// selfName is the S4U2Self server name: the service account itself (a
// different service's name gives KRB_AP_ERR_BADMATCH).
func (c *Client) selfName() types.PrincipalName {
	if c.cfg.ServiceSPN != "" {
		return types.PrincipalName{NameType: nametype.KRB_NT_SRV_INST, NameString: strings.Split(c.cfg.ServiceSPN, "/")}
	}
	return types.PrincipalName{NameType: nametype.KRB_NT_PRINCIPAL, NameString: []string{c.cfg.Service}}
}

func (c *Client) parseSPN(spn string) (types.PrincipalName, string, error) {
	realm := c.realm
	if i := strings.LastIndexByte(spn, '@'); i >= 0 {
		realm = strings.ToUpper(spn[i+1:])
		spn = spn[:i]
	}
	parts := strings.Split(spn, "/")
	if len(parts) < 2 || realm == "" {
		return types.PrincipalName{}, "", fmt.Errorf("s4u: SPN %q is not service/host[@REALM]", spn)
	}
	for _, p := range parts {
		if p == "" {
			return types.PrincipalName{}, "", fmt.Errorf("s4u: SPN %q has an empty component", spn)
		}
	}
	return types.PrincipalName{NameType: nametype.KRB_NT_SRV_INST, NameString: parts}, realm, nil
}

// isTGTFor reports whether sname is krbtgt/realm (any realm when realm is
// empty).
func isTGTFor(sname types.PrincipalName, realm string) bool {
	return len(sname.NameString) == 2 && strings.EqualFold(sname.NameString[0], "krbtgt") &&
		(realm == "" || strings.EqualFold(sname.NameString[1], realm))
}

// unescapeAt removes the backslash some implementations put before "@"
// inside an enterprise name's single string.
func unescapeAt(s string) string { return strings.ReplaceAll(s, `\@`, "@") }

func sameName(a, b types.PrincipalName) bool {
	if len(a.NameString) != len(b.NameString) {
		return false
	}
	for i := range a.NameString {
		if unescapeAt(a.NameString[i]) != unescapeAt(b.NameString[i]) {
			return false
		}
	}
	return true
}

func sameNameFold(a, b types.PrincipalName) bool {
	if len(a.NameString) != len(b.NameString) {
		return false
	}
	for i := range a.NameString {
		if !strings.EqualFold(unescapeAt(a.NameString[i]), unescapeAt(b.NameString[i])) {
			return false
		}
	}
	return true
}

// errNoTGT is returned by tgt when a refresh ended without a TGT.
var errNoTGT = errors.New("s4u: no TGT")
