package kdc

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmesh/segmesh/pkg/dnssrv"
	"github.com/segmesh/segmesh/pkg/dnssrv/dnstest"
)

// manualClock is a clock the test moves.
type manualClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *manualClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *manualClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// discoveryTransport is a transport whose realm TEST.REALM has no
// configured address: its KDCs come from dns.
func discoveryTransport(tb testing.TB, dns *dnstest.Server, clock *manualClock, infos *[]DiscoverInfo) *Transport {
	tb.Helper()
	f, err := dnssrv.New(dns.Addr())
	if err != nil {
		tb.Fatal(err)
	}
	var mu sync.Mutex
	return newTransport(tb, Config{
		Realms: map[string][]string{"TEST.REALM": nil}, DNS: f, Now: clock.Now,
		Timeout: 2 * time.Second, Refresh: time.Minute,
		Hooks: Hooks{OnDiscover: func(i DiscoverInfo) {
			mu.Lock()
			defer mu.Unlock()
			*infos = append(*infos, i)
		}},
	})
}

const kerberosSRV = "_kerberos._tcp.TEST.REALM"

// TestDiscoveredKDCs: a realm without a domain controller takes its KDCs
// from _kerberos._tcp.REALM in priority order, fails over past a dead one,
// asks DNS again after Refresh and after every KDC failed, keeps the last
// good KDCs while DNS fails, and says what DNS returned when it gave none.
// Issue 23 item 3.
func TestDiscoveredKDCs(t *testing.T) {
	dns := dnstest.Start(t)
	clock := &manualClock{t: time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)}
	var infos []DiscoverInfo
	tr := discoveryTransport(t, dns, clock, &infos)
	ctx := context.Background()
	var answered []string
	exchange := func(t *testing.T) error {
		t.Helper()
		var info ExchangeInfo
		tr.cfg.Hooks.OnExchange = func(i ExchangeInfo) { info = i }
		_, err := tr.Exchange(ctx, "test.realm", fakeTGSReq)
		answered = append(answered, info.KDC)
		return err
	}

	// No record at all: the error says what was asked of whom, and the fix.
	err := exchange(t)
	var ue *UnreachableError
	var le *dnssrv.LookupError
	if !errors.As(err, &ue) || !errors.As(err, &le) {
		t.Fatalf("err = %v, want an UnreachableError with a LookupError", err)
	}
	for _, w := range []string{kerberosSRV, dns.Addr(), "segmesh.dnsServer", "kcd.domains[].domainController"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q: %v", w, err)
		}
	}

	// dc0 (priority 0) is dead, dc1 (priority 10) answers: failover.
	dc1 := newServer(t, echo)
	dns.SetSRV(kerberosSRV, dns.Record(t, "dc0.test.realm", deadAddr(t), 0, 100), dns.Record(t, "dc1.test.realm", dc1.addr(), 10, 100))
	if err := exchange(t); err != nil {
		t.Fatal(err)
	}
	if got := answered[len(answered)-1]; got != dc1.addr() {
		t.Fatalf("answered by %q, want dc1 %s", got, dc1.addr())
	}
	a, _, ok := tr.Discovered("TEST.REALM")
	if !ok || len(a.Targets) != 2 || a.Targets[0].Host != "dc0.test.realm" || !strings.Contains(a.String(), "dc1.test.realm") {
		t.Fatalf("Discovered = %v, %v", a, ok)
	}

	// Within Refresh DNS is not asked again.
	queries := dns.Queries()
	if err := exchange(t); err != nil || dns.Queries() != queries {
		t.Fatalf("err %v, %d DNS queries within Refresh, want 0", err, dns.Queries()-queries)
	}

	// dc1 retired, dc2 published: after Refresh the new DC is used.
	dc2 := newServer(t, echo)
	dns.SetSRV(kerberosSRV, dns.Record(t, "dc2.test.realm", dc2.addr(), 0, 100))
	clock.Add(time.Minute)
	if err := exchange(t); err != nil || answered[len(answered)-1] != dc2.addr() {
		t.Fatalf("after Refresh: err %v, answered by %q, want dc2 %s", err, answered[len(answered)-1], dc2.addr())
	}

	// DNS fails: the KDCs found before stay in use.
	dns.SetSRV(kerberosSRV)
	clock.Add(time.Minute)
	if err := exchange(t); err != nil || answered[len(answered)-1] != dc2.addr() {
		t.Fatalf("DNS down: err %v, answered by %q, want dc2 still", err, answered[len(answered)-1])
	}

	// Every KDC fails: the next exchange asks DNS again at once.
	dead := deadAddr(t)
	dns.SetSRV(kerberosSRV, dns.Record(t, "dc9.test.realm", dead, 0, 100))
	clock.Add(time.Minute)
	if err := exchange(t); !errors.As(err, &ue) {
		t.Fatalf("all dead: err = %v, want UnreachableError", err)
	}
	dc3 := newServer(t, echo)
	dns.SetSRV(kerberosSRV, dns.Record(t, "dc3.test.realm", dc3.addr(), 0, 100))
	if err := exchange(t); err != nil || answered[len(answered)-1] != dc3.addr() {
		t.Fatalf("after a total failure: err %v, answered by %q, want dc3 %s without waiting for Refresh", err, answered[len(answered)-1], dc3.addr())
	}
	if len(infos) < 5 || infos[0].Err == nil || infos[1].Err != nil {
		t.Fatalf("OnDiscover saw %d lookups: %+v", len(infos), infos)
	}
}

// TestConfiguredRealmIgnoresDNS: a realm with a domain controller never
// asks DNS, and a realm without one needs a DNS finder.
func TestConfiguredRealmIgnoresDNS(t *testing.T) {
	dns := dnstest.Start(t)
	f, err := dnssrv.New(dns.Addr())
	if err != nil {
		t.Fatal(err)
	}
	srv := newServer(t, echo)
	tr := newTransport(t, Config{Realms: map[string][]string{"TEST.REALM": {srv.addr()}}, DNS: f})
	if _, err := tr.Exchange(context.Background(), "TEST.REALM", fakeTGSReq); err != nil {
		t.Fatal(err)
	}
	if dns.Queries() != 0 {
		t.Fatalf("%d DNS queries for a configured realm", dns.Queries())
	}
	if _, _, ok := tr.Discovered("TEST.REALM"); ok {
		t.Fatal("Discovered reports a configured realm")
	}
	if _, err := New(Config{Realms: map[string][]string{"TEST.REALM": nil}}); err == nil {
		t.Fatal("a realm without address or DNS finder was accepted")
	}
}
