package certmap

import (
	"context"
	"crypto/tls"
	"net"
	"strconv"
	"testing"

	"github.com/segmesh/segmesh/pkg/certmap/ldaptest"
	"github.com/segmesh/segmesh/pkg/dnssrv"
	"github.com/segmesh/segmesh/pkg/dnssrv/dnstest"
)

// TestAttackDiscoveryBindPassword: with a cert.mapping.ldap.url without a
// host the Global Catalogs come from DNS, which nobody authenticates. A
// spoofed _gc._tcp answer names the attacker's directory (here a fake that
// knows the password, so a bind reaching it is counted and the mapping it
// answers would be believed). The service account's password (the KCD
// account: it can impersonate every user) must never reach it:
//   - a plain ldap:/// is refused (a simple bind in clear to whatever host
//     DNS names);
//   - over TLS, a target outside the domain is not dialled: its certificate
//     can come from any CA the gateway trusts, with no ldapCaFile the
//     system's public CAs, which issue for the attacker's own domain;
//   - a target inside the domain with a certificate the gateway does not
//     trust fails the handshake before the bind.
func TestAttackDiscoveryBindPassword(t *testing.T) {
	outsideConf, outsidePool := ldaptest.TLS(t, "gc.attacker.example", "gc.lab.test.attacker.example", "evillab.test")
	insideConf, _ := ldaptest.TLS(t, "gc1.lab.test")
	tests := []struct {
		name     string
		url      string
		startTLS bool
		conf     *tls.Config // the attacker's directory (nil: plain LDAP)
		implicit bool
		target   string // the SRV target the spoofed answer names
		refused  bool   // New refuses the configuration
	}{
		{name: "plain ldap:///", url: "ldap:///", target: "gc1.lab.test", refused: true},
		{name: "plain ldap://:3268/ with a base DN", url: "ldap://:3268/" + testBase, target: "gc1.lab.test", refused: true},
		{name: "ldaps:/// target outside the domain, trusted certificate", url: "ldaps:///", conf: outsideConf, implicit: true, target: "gc.attacker.example"},
		{name: "ldaps:/// target with the domain inside its name", url: "ldaps:///", conf: outsideConf, implicit: true, target: "gc.lab.test.attacker.example"},
		{name: "ldaps:/// target sharing the domain's last letters", url: "ldaps:///", conf: outsideConf, implicit: true, target: "evillab.test"},
		{name: "ldap:/// with StartTLS, target outside the domain", url: "ldap:///", startTLS: true, conf: outsideConf, target: "gc.attacker.example"},
		{name: "ldaps:/// target inside the domain, untrusted certificate", url: "ldaps:///", conf: insideConf, implicit: true, target: "gc1.lab.test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evil := newLab(t, ldaptest.Options{TLS: tt.conf, Implicit: tt.implicit})
			_, port, _ := net.SplitHostPort(evil.srv.Addr())
			dns := dnstest.Start(t)
			dns.SetSRV("_gc._tcp.lab.test", dnstest.SRV{Target: tt.target, Port: mustPort(t, port), Weight: 100})
			dns.SetA(tt.target, "127.0.0.1")
			f, err := dnssrv.New(dns.Addr())
			if err != nil {
				t.Fatal(err)
			}
			cfg := evil.config(nil)
			cfg.URL, cfg.StartTLS, cfg.DNS, cfg.Domain, cfg.BaseDN = tt.url, tt.startTLS, f, "lab.test", testBase
			cfg.RootCAs, cfg.CacheSize = outsidePool, -1
			cfg.DialContext = redirect(evil.srv.Addr())
			m, err := New(cfg)
			if tt.refused {
				if err == nil {
					_, mapErr := m.Map(context.Background(), evil.bob.Raw)
					_ = m.Close()
					t.Fatalf("New accepted %s; Map = %v; binds at the attacker's directory: %d", cfg.URL, mapErr, evil.srv.Binds())
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			t.Cleanup(func() { _ = m.Close() })
			mp, err := m.Map(context.Background(), evil.bob.Raw)
			if err == nil {
				t.Errorf("Map = %+v through the attacker's directory", mp)
			}
			if n := evil.srv.Binds(); n != 0 {
				t.Errorf("%d bind(s) with the service account's password reached the attacker's directory", n)
			}
		})
	}
}

func mustPort(tb testing.TB, s string) uint16 {
	tb.Helper()
	p, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		tb.Fatal(err)
	}
	return uint16(p)
}
