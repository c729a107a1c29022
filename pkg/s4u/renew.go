package s4u

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/flags"

	"github.com/segmesh/segmesh/pkg/krbhint"
)

const (
	// StageRenew is the TGS renewal of a user's service ticket (the ticket
	// S4U2Proxy returned).
	StageRenew = krbhint.StageRenew
	// StageRenewTGT is the TGS renewal of the service account's TGT.
	StageRenewTGT = krbhint.StageRenewTGT
)

// ErrNotRenewable is matched (errors.Is) when Renew is given a ticket that
// cannot be renewed: not renewable, expired, or past its renew-till. No
// KDC was asked.
var ErrNotRenewable = errors.New("s4u: ticket is not renewable")

// Renew renews t by one TGS exchange with the renew KDC option (RFC 4120
// sections 2.3 and 3.3.3): t itself authenticates the request in
// PA-TGS-REQ, sent to the KDC of the ticket's realm with the ticket's
// server as sname. The KDC returns the same ticket (client, server,
// authorization data) with a new end time, at most its renew-till; by RFC
// 4120 the new lifetime equals the old one. It works for the service
// account's TGT and, where the KDC allows it, for a user's service ticket
// from S4U2Proxy; a KDC that renews only TGTs (Heimdal, so Samba) answers
// with a KRB-ERROR, returned as *KDCError.
//
// The reply is refused unless its client and server are the ticket's: a
// renewal must not change whom the ticket is for.
func (c *Client) Renew(ctx context.Context, t *Ticket) (*Ticket, error) {
	stage := StageRenew
	if isTGTFor(t.SName, "") {
		stage = StageRenewTGT
	}
	return c.renew(ctx, stage, t)
}

func (c *Client) renew(ctx context.Context, stage Stage, t *Ticket) (*Ticket, error) {
	now := c.now()
	if !t.Renewable(now) {
		return nil, fmt.Errorf("%w: %s (end %s, renew-till %s)", ErrNotRenewable, principalString(t.SName, t.SRealm),
			t.EndTime.UTC().Format(time.RFC3339), t.RenewTill.UTC().Format(time.RFC3339))
	}
	realm := strings.ToUpper(t.Ticket.Realm)
	// RFC 4120 3.3.3 has the KDC copy the renewed ticket's flags, but
	// Heimdal (Samba) derives them from the request's options as for any
	// TGS-REQ: a renewal without forwardable returns a TGT that is not
	// forwardable, and S4U then fails with BADOPTION. Ask for what the
	// ticket has.
	options := []int{flags.Renew, flags.Renewable}
	if t.Forwardable() {
		options = append(options, flags.Forwardable)
	}
	r := tgsRequest{
		realm:    realm,
		sname:    t.Ticket.SName,
		tgt:      t,
		options:  options,
		now:      now,
		lifetime: t.Lifetime(),
		etypes:   c.cfg.Etypes,
	}
	n, err := c.tgsExchange(ctx, stage, realm, &r)
	if err != nil {
		return nil, err
	}
	if !sameNameFold(n.SName, t.SName) || !strings.EqualFold(n.SRealm, t.SRealm) {
		return nil, fmt.Errorf("s4u: %s: the KDC answered with a ticket for %s, want %s", stage,
			principalString(n.SName, n.SRealm), principalString(t.SName, t.SRealm))
	}
	if !sameName(n.CName, t.CName) || !strings.EqualFold(n.CRealm, t.CRealm) {
		return nil, &WrongClientError{Stage: stage, Want: t.ClientString(), Got: n.ClientString()}
	}
	if !n.EndTime.After(now) {
		return nil, fmt.Errorf("s4u: %s: the renewed ticket ends at %s, already past", stage, n.EndTime.UTC().Format(time.RFC3339))
	}
	return n, nil
}

// logRenewRefusal logs a refused renewal once per stage and Kerberos code
// (a KDC that refuses one renewal refuses them all; the exchange hook
// counts every one).
func (c *Client) logRenewRefusal(stage Stage, realm string, err error) {
	var ke *KDCError
	code := int32(0)
	if errors.As(err, &ke) {
		code = ke.Code
	}
	if _, seen := c.refusals.LoadOrStore(fmt.Sprintf("%s/%d", stage, code), true); seen {
		return
	}
	c.log.Warn("KDC refused a ticket renewal; falling back to a new ticket (logged once per code)",
		"stage", string(stage), "realm", realm, "krb_code", code, "error", err)
}
