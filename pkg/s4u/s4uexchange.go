package s4u

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/segmesh/segmesh/pkg/krbhint"
)

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
