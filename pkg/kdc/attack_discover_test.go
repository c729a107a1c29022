package kdc

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/segmesh/segmesh/pkg/dnssrv/dnstest"
)

// TestAttackKDCOutsideRealm: a _kerberos._tcp answer naming KDCs outside
// the realm's DNS domain (a spoofed answer sending the service account's
// pre-authentication to a host of the attacker's) is not used, the way
// Global Catalogs outside the domain are not (review 2's 0e32c01). With
// only such targets the exchange is refused naming what DNS returned and
// the setting that fixes it; a target inside the domain is still used,
// even when an outside one comes first. Attacker review 2, "left".
func TestAttackKDCOutsideRealm(t *testing.T) {
	for _, tc := range []struct {
		name    string
		outside []string // hosts at priority 0, each a live KDC
		inside  string   // a host at priority 10, "" for none
	}{
		{name: "another domain", outside: []string{"kdc.attacker.example"}},
		{name: "realm as a label", outside: []string{"test.realm.attacker.example"}},
		{name: "realm as a suffix without a dot", outside: []string{"eviltest.realm"}},
		{name: "outside first, inside second", outside: []string{"kdc.attacker.example"}, inside: "dc1.test.realm"},
		{name: "the domain itself", inside: "TEST.REALM."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dns := dnstest.Start(t)
			clock := &manualClock{t: time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)}
			var infos []DiscoverInfo
			tr := discoveryTransport(t, dns, clock, &infos)
			rogue := newServer(t, echo)
			honest := newServer(t, echo)
			var records []dnstest.SRV
			for _, h := range tc.outside {
				records = append(records, dns.Record(t, h, rogue.addr(), 0, 100))
			}
			if tc.inside != "" {
				records = append(records, dns.Record(t, tc.inside, honest.addr(), 10, 100))
			}
			dns.SetSRV(kerberosSRV, records...)
			var info ExchangeInfo
			tr.cfg.Hooks.OnExchange = func(i ExchangeInfo) { info = i }
			_, err := tr.Exchange(context.Background(), "TEST.REALM", fakeTGSReq)
			if rogue.calls.Load() != 0 {
				t.Fatalf("the KDC outside the realm's domain got %d requests", rogue.calls.Load())
			}
			if tc.inside != "" {
				if err != nil || info.KDC != honest.addr() {
					t.Fatalf("err %v, answered by %q, want the KDC inside the domain %s", err, info.KDC, honest.addr())
				}
				return
			}
			var ue *UnreachableError
			if !errors.As(err, &ue) || ue.Discovery == nil {
				t.Fatalf("err = %v, want an UnreachableError from discovery", err)
			}
			for _, w := range append([]string{"outside", "test.realm", "kcd.domains[].domainController", kerberosSRV}, tc.outside...) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q: %v", w, err)
				}
			}
		})
	}
}
