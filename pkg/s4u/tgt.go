package s4u

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/types"
)

// tgtSlot holds one realm's TGT and the refresh in flight, if any.
type tgtSlot struct {
	cur      *Ticket
	call     *tgtCall
	lastFail time.Time
}

type tgtCall struct {
	done chan struct{}
	tgt  *Ticket
	err  error
}

// TGTStatus describes a realm's current TGT, for metrics (TGT age).
type TGTStatus struct {
	// Realm is the realm the TGT is for (krbtgt/Realm).
	Realm string
	// AuthTime, StartTime and EndTime are the TGT's times.
	AuthTime, StartTime, EndTime time.Time
	// RefreshAt is when the Client refreshes it.
	RefreshAt time.Time
}

// TGTs returns the status of the TGTs held, one per realm.
func (c *Client) TGTs() []TGTStatus {
	c.tgtMu.Lock()
	defer c.tgtMu.Unlock()
	out := make([]TGTStatus, 0, len(c.tgts))
	for realm, s := range c.tgts {
		if s.cur == nil {
			continue
		}
		out = append(out, TGTStatus{Realm: realm, AuthTime: s.cur.AuthTime, StartTime: s.cur.StartTime,
			EndTime: s.cur.EndTime, RefreshAt: c.refreshAt(s.cur)})
	}
	return out
}

// TGT returns a valid TGT for realm (krbtgt/REALM issued to the service
// account), getting or refreshing it when needed. Exported for diagnostics
// (config check, diagnose): normal callers use ServiceTicket.
func (c *Client) TGT(ctx context.Context, realm string) (*Ticket, error) {
	realm = strings.ToUpper(realm)
	if !c.realms[realm] {
		return nil, fmt.Errorf("s4u: realm %s is not configured", realm)
	}
	return c.tgt(ctx, realm)
}

// refreshAt is the time a TGT is refreshed: at 80% of its lifetime or
// RefreshBefore ahead of its end, whichever comes first.
func (c *Client) refreshAt(t *Ticket) time.Time {
	at := t.StartTime.Add(time.Duration(float64(t.Lifetime()) * refreshFraction))
	if early := t.EndTime.Add(-c.cfg.RefreshBefore); early.Before(at) && early.After(t.StartTime) {
		at = early
	}
	return at
}

// tgt returns the realm's TGT. A TGT past its refresh time but still valid
// for a while is returned at once while one background refresh replaces it;
// otherwise callers wait for the single refresh in flight (singleflight).
func (c *Client) tgt(ctx context.Context, realm string) (*Ticket, error) {
	now := c.now()
	c.tgtMu.Lock()
	s := c.tgts[realm]
	if s == nil {
		s = &tgtSlot{}
		c.tgts[realm] = s
	}
	cur := s.cur
	if cur != nil && now.Before(c.refreshAt(cur)) {
		c.tgtMu.Unlock()
		return cur, nil
	}
	usable := cur != nil && now.Before(cur.EndTime.Add(-minValidity))
	call := s.call
	if call == nil && (!usable || now.Sub(s.lastFail) >= failureBackoff) {
		call = &tgtCall{done: make(chan struct{})}
		s.call = call
		go c.refresh(context.WithoutCancel(ctx), realm, s, call)
	}
	c.tgtMu.Unlock()
	if usable {
		return cur, nil
	}
	select {
	case <-call.done:
		return call.tgt, call.err
	case <-ctx.Done():
		return nil, fmt.Errorf("s4u: waiting for the TGT of realm %s: %w", realm, ctx.Err())
	}
}

func (c *Client) refresh(ctx context.Context, realm string, s *tgtSlot, call *tgtCall) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RefreshTimeout)
	defer cancel()
	t, err := c.fetchTGT(ctx, realm)
	if err == nil && t == nil {
		err = errNoTGT
	}
	c.tgtMu.Lock()
	if err == nil {
		s.cur = t
		s.lastFail = time.Time{}
	} else {
		s.lastFail = c.now()
	}
	s.call = nil
	c.tgtMu.Unlock()
	if err != nil {
		c.log.Warn("TGT refresh failed; the current TGT stays in use while valid", "realm", realm, "error", err)
	} else {
		c.log.Debug("TGT refreshed", "realm", realm, "end", t.EndTime)
	}
	call.tgt, call.err = t, err
	close(call.done)
}

// fetchTGT gets a new TGT: by AS exchange for the primary realm, by
// following cross-realm referrals from the primary TGT for another realm.
func (c *Client) fetchTGT(ctx context.Context, realm string) (*Ticket, error) {
	if realm == c.realm {
		return c.asExchange(ctx)
	}
	cur, err := c.tgt(ctx, c.realm)
	if err != nil {
		return nil, err
	}
	for hop := 0; hop < maxReferralHops; hop++ {
		kdcRealm := cur.Ticket.SName.NameString[1]
		r := tgsRequest{
			realm:    kdcRealm,
			sname:    types.PrincipalName{NameType: nametype.KRB_NT_SRV_INST, NameString: []string{"krbtgt", realm}},
			tgt:      cur,
			options:  []int{flags.Forwardable, flags.Renewable, flags.Canonicalize},
			now:      c.now(),
			lifetime: c.cfg.TicketLifetime,
			renew:    c.cfg.RenewLifetime,
			etypes:   c.cfg.Etypes,
		}
		next, err := c.tgsExchange(ctx, StageReferral, kdcRealm, &r)
		if err != nil {
			return nil, err
		}
		if !isTGTFor(next.Ticket.SName, "") {
			return nil, fmt.Errorf("s4u: %s: realm %s answered with %s, want a TGT", StageReferral, kdcRealm,
				principalString(next.Ticket.SName, next.Ticket.Realm))
		}
		if isTGTFor(next.Ticket.SName, realm) {
			return next, nil
		}
		if isTGTFor(next.Ticket.SName, kdcRealm) {
			return nil, fmt.Errorf("s4u: %s: realm %s has no path to realm %s", StageReferral, kdcRealm, realm)
		}
		cur = next
	}
	return nil, fmt.Errorf("s4u: %s: more than %d referrals on the way to realm %s", StageReferral, maxReferralHops, realm)
}
