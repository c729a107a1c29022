package s4u

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/etypeID"

	"github.com/segmesh/segmesh/pkg/kdc"
	"github.com/segmesh/segmesh/pkg/krbtime"
	"github.com/segmesh/segmesh/pkg/problem"
)

// The settings whose values New's refusals are about, as config.json names
// them (the ticket role's Validate files each refusal under its key).
const (
	// KeyDomains holds the realm (Config.Realm), the first domain.
	KeyDomains = "kcd.domains"
	// KeyServiceAccount is the service account's name (Config.Service).
	KeyServiceAccount = "kcd.serviceAccountUserName"
	// KeyServicePassword is the service account's password (Config.Password).
	KeyServicePassword = "kcd.serviceAccountPassword"
	// KeyArmorAccount is the FAST armor account's name (Config.ArmorAccount).
	KeyArmorAccount = "segmesh.ticket.armorAccountUserName"
	// KeyArmorPassword is the armor account's password (Config.ArmorPassword).
	KeyArmorPassword = "segmesh.ticket.armorAccountPassword"
)

// configError is New's refusal: every problem of its Config, in one line.
type configError []error

// Error lists the problems after "s4u: invalid config: ".
func (e configError) Error() string {
	msgs := make([]string, len(e))
	for i, err := range e {
		msgs[i] = err.Error()
	}
	return "s4u: invalid config: " + strings.Join(msgs, "; ")
}

// Unwrap returns the problems.
func (e configError) Unwrap() []error { return e }

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
	// OnPanic is called when the background TGT refresh of realm panicked
	// (a parser meeting a KDC reply it did not expect), with the value and
	// the stack, after it was logged; the refresh counts as failed.
	OnPanic func(realm string, value any, stack []byte)
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
// request gets the TGT. A refusal lists every problem of cfg; each one a
// setting causes is a *problem.SettingError naming it (KeyServiceAccount, …).
func New(cfg Config) (*Client, error) {
	var problems configError
	bad := func(key, msg string) { problems = append(problems, problem.OnSetting(key, errors.New(msg))) }
	if cfg.Realm == "" {
		bad(KeyDomains, "realm is empty")
	}
	if cfg.Service == "" {
		bad(KeyServiceAccount, "service account name is empty")
	}
	if strings.ContainsAny(cfg.Service, "@/\\") {
		bad(KeyServiceAccount, fmt.Sprintf("service account name %q must be a bare sAMAccountName (no @, / or \\)", cfg.Service))
	}
	if cfg.Password == "" {
		bad(KeyServicePassword, "service account password is empty")
	}
	if cfg.Exchanger == nil {
		problems = append(problems, errors.New("no KDC exchanger"))
	}
	if cfg.ArmorAccount != "" && cfg.ArmorPassword == "" {
		bad(KeyArmorPassword, fmt.Sprintf("armor account %s has no password", cfg.ArmorAccount))
	}
	if strings.ContainsAny(cfg.ArmorAccount, "@/\\") {
		bad(KeyArmorAccount, fmt.Sprintf("armor account name %q must be a bare sAMAccountName (no @, / or \\)", cfg.ArmorAccount))
	}
	if cfg.Etypes == nil {
		cfg.Etypes = []int32{etypeID.AES256_CTS_HMAC_SHA1_96, etypeID.AES128_CTS_HMAC_SHA1_96}
		if cfg.AllowRC4 {
			cfg.Etypes = append(cfg.Etypes, etypeID.RC4_HMAC)
		}
	}
	for _, e := range cfg.Etypes {
		if _, err := usableEtype(e); err != nil {
			problems = append(problems, err)
		}
	}
	if len(cfg.Etypes) == 0 {
		problems = append(problems, errors.New("no etype"))
	}
	if len(problems) > 0 {
		return nil, problems
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
