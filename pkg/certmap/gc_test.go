package certmap

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/pkg/certmap/ldaptest"
	"github.com/segmesh/segmesh/pkg/dnssrv"
	"github.com/segmesh/segmesh/pkg/dnssrv/dnstest"
)

func deadLDAP(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	a := ln.Addr().String()
	_ = ln.Close()
	return a
}

// TestGlobalCatalogsFromDNS: with cert.mapping.ldap.url ldap:/// (no host, StartTLS)
// the mapper finds the Global Catalogs by _gc._tcp.DOMAIN, fails over past
// a dead one, asks DNS again after every one failed, and says what it asked
// of whom when DNS has none. Issue 23 item 3.
func TestGlobalCatalogsFromDNS(t *testing.T) {
	conf, pool := ldaptest.TLS(t, "gc0.lab.test", "gc1.lab.test", "gc2.lab.test")
	l := newLab(t, ldaptest.Options{TLS: conf})
	dns := dnstest.Start(t)
	f, err := dnssrv.New(dns.Addr())
	if err != nil {
		t.Fatal(err)
	}
	cfg := l.config(nil)
	// StartTLS: a plain bind to a host from DNS is refused (TestAttackDiscoveryBindPassword).
	cfg.URL, cfg.DNS, cfg.Domain, cfg.BaseDN = "ldap:///", f, "lab.test", testBase
	cfg.StartTLS, cfg.RootCAs = true, pool
	cfg.CacheSize = -1
	m := newMapper(t, cfg)
	ctx := context.Background()

	_, err = m.Map(ctx, l.bob.Raw)
	var de *DirectoryError
	if !errors.As(err, &de) || !strings.Contains(err.Error(), "_gc._tcp.lab.test") || !strings.Contains(err.Error(), dns.Addr()) || !strings.Contains(de.Hint, "segmesh.dnsServer") {
		t.Fatalf("no record: err = %v, want a DirectoryError naming the query, the server and segmesh.dnsServer", err)
	}

	dns.SetSRV("_gc._tcp.lab.test", dns.Record(t, "gc0.lab.test", deadLDAP(t), 0, 100), dns.Record(t, "gc1.lab.test", l.srv.Addr(), 10, 100))
	mp, err := m.Map(ctx, l.bob.Raw)
	if err != nil || mp.UPN != "bob.smith@lab.test" {
		t.Fatalf("Map(bob) = %+v, %v; want bob.smith@lab.test through gc1 after gc0 failed", mp, err)
	}
	a, ok := m.Discovered()
	if !ok || len(a.Targets) != 2 || a.Targets[0].Host != "gc0.lab.test" {
		t.Fatalf("Discovered = %v, %v", a, ok)
	}
	if !strings.Contains(m.Endpoint().String(), "Global Catalogs from DNS SRV") {
		t.Errorf("Endpoint() = %s", m.Endpoint())
	}

	// gc1 retired, gc2 published: once every known one fails, DNS is asked
	// again.
	l2 := newLab(t, ldaptest.Options{TLS: conf})
	l.srv.Stop()
	dns.SetSRV("_gc._tcp.lab.test", dns.Record(t, "gc2.lab.test", l2.srv.Addr(), 0, 100))
	if _, err := m.Map(ctx, l.bob.Raw); err == nil {
		t.Fatal("Map succeeded with every known Global Catalog down")
	}
	if _, err := m.Map(ctx, l2.bob.Raw); err != nil {
		t.Fatalf("after a total failure: %v, want gc2 found in DNS", err)
	}
}

// TestGlobalCatalogTLSNamesTheTarget: over ldaps:// the certificate is
// checked against the SRV target's host name, and the URL's port is used
// for every target.
func TestGlobalCatalogTLSNamesTheTarget(t *testing.T) {
	for _, tt := range []struct {
		certHost string
		ok       bool
	}{{"gc1.lab.test", true}, {"other.lab.test", false}} {
		t.Run(tt.certHost, func(t *testing.T) {
			conf, pool := ldaptest.TLS(t, tt.certHost)
			l := newLab(t, ldaptest.Options{TLS: conf, Implicit: true})
			dns := dnstest.Start(t)
			_, port, _ := net.SplitHostPort(l.srv.Addr())
			dns.SetSRV("_gc._tcp.lab.test", dnstest.SRV{Target: "gc1.lab.test", Port: 3268, Weight: 100})
			dns.SetA("gc1.lab.test", "127.0.0.1")
			f, err := dnssrv.New(dns.Addr())
			if err != nil {
				t.Fatal(err)
			}
			cfg := l.config(nil)
			cfg.URL, cfg.DNS, cfg.Domain, cfg.RootCAs, cfg.BaseDN = "ldaps://:"+port+"/", f, "lab.test", pool, testBase
			m := newMapper(t, cfg)
			_, err = m.Map(context.Background(), l.bob.Raw)
			if tt.ok != (err == nil) {
				t.Fatalf("Map = %v, want ok %v", err, tt.ok)
			}
			if !tt.ok && !strings.Contains(err.Error(), "gc1.lab.test") {
				t.Errorf("error does not name the host checked: %v", err)
			}
		})
	}
}

func TestGlobalCatalogNeedsADomain(t *testing.T) {
	l := newLab(t, ldaptest.Options{})
	cfg := l.config(nil)
	cfg.URL = "ldaps:///"
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "kcd.domains") {
		t.Fatalf("New = %v, want an error naming kcd.domains", err)
	}
}
