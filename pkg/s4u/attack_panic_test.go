package s4u_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmesh/segmesh/pkg/kdc/kdctest"
	"github.com/segmesh/segmesh/pkg/s4u"
)

// TestAttackPanicInTheTGTRefresh: a KDC reply to the service account's AS
// exchange that panics a parser (what pkg/rpc's recovery, 3c68727, is for;
// here the exchange hook panics in its place). The TGT is fetched in a
// goroutine of its own (tgtWithin's refresh), not in any gRPC handler's:
// a panic there ended the process and every role in it, whatever the
// handler recovered (attacker review rvedge: this crashed the test binary
// on main). Now it is a failed refresh: the callers waiting for it get an
// error naming the realm, the panic and its stack are logged, and the next
// call fetches the TGT again.
func TestAttackPanicInTheTGTRefresh(t *testing.T) {
	_, k, _ := clockedClient(t, nil)
	var panicking atomic.Bool
	panicking.Store(true)
	var reported atomic.Value // the realm OnPanic got
	c := newClient(t, newTransport(t, map[string][]string{realm: {k.Addr()}}), func(c *s4u.Config) {
		c.Hooks.OnExchange = func(st s4u.Stage, _ string, _ error) {
			if st == s4u.StageASReq && panicking.Load() {
				panic("unexpected AS reply")
			}
		}
		c.Hooks.OnPanic = func(r string, v any, stack []byte) {
			if v == "unexpected AS reply" && strings.Contains(string(stack), "attack_panic_test.go") {
				reported.Store(r)
			}
		}
	})
	_, err := c.ServiceTicket(context.Background(), "alice", target)
	if err == nil || !strings.Contains(err.Error(), "panicked") || !strings.Contains(err.Error(), realm) {
		t.Fatalf("ServiceTicket with a panicking TGT refresh: %v, want an error naming the panic and the realm", err)
	}
	if r, _ := reported.Load().(string); r != realm {
		t.Fatalf("Hooks.OnPanic got realm %q, want %q with the panic and its stack (for the count)", r, realm)
	}
	panicking.Store(false)
	tk, err := c.ServiceTicket(context.Background(), "alice", target)
	if err != nil {
		t.Fatalf("the call after a panicking refresh: %v", err)
	}
	checkTicket(t, k, tk, "alice", realm)
}

// TestAttackEmptyFlagsInAKDCReply (rvpanic3): a KDC reply whose encrypted
// part carries an empty flags BIT STRING (RFC 4120 wants 32 bits or more)
// made Ticket.Forwardable and Renewable index past its end (gokrb5's
// types.IsFlagSet): on main the AS exchange's panic failed every TGT
// refresh ("panicked"), so the ticket role got no ticket for anyone while
// that KDC answered. Empty flags now read as none set.
func TestAttackEmptyFlagsInAKDCReply(t *testing.T) {
	_, k, c := clockedClient(t, func(cfg *kdctest.Config) {
		cfg.EmptyReplyFlags = map[kdctest.Kind]bool{kdctest.KindAS: true, kdctest.KindS4U2Self: true, kdctest.KindS4U2Proxy: true}
	})
	tk, err := c.ServiceTicket(context.Background(), "alice", target)
	if err != nil {
		t.Fatalf("ServiceTicket with empty reply flags: %v", err)
	}
	checkTicket(t, k, tk, "alice", realm)
	if tk.Forwardable() || tk.Renewable(time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)) {
		t.Fatal("a ticket whose reply had no flags reads as forwardable or renewable")
	}
}
