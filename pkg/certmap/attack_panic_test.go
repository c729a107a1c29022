package certmap

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"github.com/segmesh/segmesh/pkg/certmap/ldaptest"
	flightpkg "github.com/segmesh/segmesh/pkg/flight"
)

// TestAttackPanicInTheLookupReachesTheCaller: a directory answer that
// panics a parser of the mapping (what pkg/rpc's recovery, 3c68727, is
// for; FuzzDirectoryUser's inputs). The lookup runs in a goroutine of its
// own shared by the callers waiting for it, not in the gRPC handler's
// goroutine: a panic there ended the process and every role in it, whatever
// the handler recovered (attacker review rvedge: this crashed the test
// binary on main). Now the panic is raised again in each waiting caller's
// goroutine (the handler's, where the rpc recovery answers Internal and
// logs it), no flight is left behind (a later call for the same
// certificate is not stuck waiting for it), nothing is cached, and the
// next call is served.
func TestAttackPanicInTheLookupReachesTheCaller(t *testing.T) {
	l := newLab(t, ldaptest.Options{})
	var hooked atomic.Int32 // lookups whose panic Hooks.Panic got, for the log and the count
	cfg := l.config(nil)
	cfg.Hooks.Panic = func(p *flightpkg.Panic) {
		if strings.Contains(fmt.Sprint(p.Value), "unexpected directory answer for mallory") && len(p.Stack) > 0 {
			hooked.Add(1)
		}
	}
	m := newMapper(t, cfg)
	key := sha256.Sum256(l.mallory.Raw)
	panicking := func(*ldap.Conn, string) (answer, error) { panic("unexpected directory answer for mallory") }
	for i := range 2 {
		v := lookupRecovered(m, key, panicking)
		if err, _ := v.(error); err == nil || !strings.Contains(err.Error(), "unexpected directory answer for mallory") {
			t.Fatalf("lookup %d: panic %v, want the search's panic raised in the caller", i+1, v)
		}
	}
	if n := hooked.Load(); n != 2 {
		t.Fatalf("Hooks.Panic got %d panics, want one per panicking lookup (2)", n)
	}
	m.flightMu.Lock()
	left := len(m.flights)
	m.flightMu.Unlock()
	if left != 0 {
		t.Fatalf("%d flights left behind after a panicking lookup", left)
	}
	if _, hit := m.cache.get(key); hit {
		t.Fatal("a panicking lookup cached an answer")
	}
	mp, err := m.Map(context.Background(), l.alice.Raw)
	if err != nil || mp.UPN != "alice@lab.test" {
		t.Fatalf("alice after the panic: %+v, %v", mp, err)
	}
}

// lookupRecovered runs m.sharedLookup for key with search and returns the
// value it panicked with (what pkg/rpc's recovery gets), nil if none.
func lookupRecovered(m *Mapper, key fingerprint, search func(*ldap.Conn, string) (answer, error)) (v any) {
	defer func() { v = recover() }()
	_, _ = m.sharedLookup(context.Background(), key, search)
	return nil
}
