package s4u

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/segmesh/segmesh/pkg/kdc"
	"github.com/segmesh/segmesh/pkg/telemetry"
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
	return c.tgtWithin(ctx, realm, 0)
}

// tgtWithin is tgt for a caller that wants a TGT started less than maxAge
// ago (zero: any age). A ticket issued with a TGT ends no later than the
// TGT (RFC 4120 3.3.3; Samba and Windows cap both the end time and the
// renew-till), so an S4U pair made with a TGT that has 3 hours left yields
// a 3-hour ticket, and since a renewal keeps the lifetime, every renewal of
// it is 3 hours too. An older TGT is refreshed first (at most once per
// maxAge, shared by every pair meanwhile); if that fails, the current one
// is used while valid.
func (c *Client) tgtWithin(ctx context.Context, realm string, maxAge time.Duration) (*Ticket, error) {
	now := c.now()
	c.tgtMu.Lock()
	s := c.tgts[realm]
	if s == nil {
		s = &tgtSlot{}
		c.tgts[realm] = s
	}
	cur := s.cur
	fresh := cur != nil && (maxAge <= 0 || now.Sub(cur.StartTime) < maxAge)
	if fresh && now.Before(c.refreshAt(cur)) {
		c.tgtMu.Unlock()
		return cur, nil
	}
	usable := cur != nil && now.Before(cur.EndTime.Add(-minValidity))
	call := s.call
	if call == nil && (!usable || now.Sub(s.lastFail) >= failureBackoff) {
		call = &tgtCall{done: make(chan struct{})}
		s.call = call
		c.bg.Add(1)
		go c.refresh(context.WithoutCancel(ctx), realm, s, call, cur)
	}
	c.tgtMu.Unlock()
	if usable && (fresh || call == nil) {
		return cur, nil
	}
	select {
	case <-call.done:
		if call.err != nil && usable {
			return cur, nil
		}
		return call.tgt, call.err
	case <-ctx.Done():
		return nil, fmt.Errorf("s4u: waiting for the TGT of realm %s: %w", realm, ctx.Err())
	}
}

// Wait blocks until the background TGT refreshes started so far have
// ended (a role's Stop, tests).
func (c *Client) Wait() {
	c.bg.Wait()
	if c.armor != nil {
		c.armor.Wait()
	}
}

func (c *Client) refresh(ctx context.Context, realm string, s *tgtSlot, call *tgtCall, cur *Ticket) {
	defer c.bg.Done()
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RefreshTimeout)
	defer cancel()
	t, err := c.guardedFetchTGT(ctx, realm, cur)
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

// guardedFetchTGT is fetchTGT with a panic (a parser meeting a KDC reply
// it did not expect) logged with its stack and returned as a failed
// refresh. The refresh runs in a goroutine of its own, which no gRPC
// handler's recovery (pkg/rpc) covers: unrecovered, the panic ended the
// process and every role in it (TestAttackPanicInTheTGTRefresh).
func (c *Client) guardedFetchTGT(ctx context.Context, realm string, cur *Ticket) (t *Ticket, err error) {
	defer func() {
		if v := recover(); v != nil {
			stack := debug.Stack()
			c.log.Error("the TGT refresh panicked; it counts as a failed refresh", "realm", realm, "panic", telemetry.PanicValue(v), "stack", string(stack))
			if h := c.cfg.Hooks.OnPanic; h != nil {
				h(realm, v, stack)
			}
			t, err = nil, fmt.Errorf("s4u: the TGT refresh for realm %s panicked (logged with its stack): a KDC reply the parser did not expect", realm)
		}
	}()
	return c.fetchTGT(ctx, realm, cur)
}

// fetchTGT gets a new TGT: for the primary realm by renewing cur (one TGS
// exchange) while renewal can still give it a full lifetime, else or when
// the KDC refuses the renewal by an AS exchange (two round trips: the first
// is answered PREAUTH_REQUIRED); for another realm by following cross-realm
// referrals from the primary TGT.
func (c *Client) fetchTGT(ctx context.Context, realm string, cur *Ticket) (*Ticket, error) {
	if realm == c.realm {
		now := c.now()
		if cur.Renewable(now) && !cur.RenewTill.Before(now.Add(cur.Lifetime())) {
			t, err := c.renew(ctx, StageRenewTGT, cur)
			if err == nil {
				return t, nil
			}
			if ctx.Err() != nil || errors.As(err, new(*kdc.UnreachableError)) {
				return nil, err
			}
			c.logRenewRefusal(StageRenewTGT, realm, err)
		}
		return c.asExchange(ctx)
	}
	cur, err := c.tgt(ctx, c.realm)
	if err != nil {
		return nil, err
	}
	for hop := 0; hop < maxReferralHops; hop++ {
		if !isTGTFor(cur.Ticket.SName, "") {
			return nil, fmt.Errorf("s4u: %s: the ticket on the way to realm %s is for %s, not a TGT", StageReferral, realm,
				principalString(cur.Ticket.SName, cur.Ticket.Realm))
		}
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

// errNoTGT is returned by tgt when a refresh ended without a TGT.
var errNoTGT = errors.New("s4u: no TGT")
