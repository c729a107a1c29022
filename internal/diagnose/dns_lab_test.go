//go:build lab

package diagnose

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/internal/labenv"
	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/dnssrv/dnstest"
)

// TestLabKDCFromDNS: the lab's config.json with the domain controller left
// out and segmesh.dnsServer aimed at the lab Samba's own DNS (port 53 on
// the DC's address): the KDC is found by _kerberos._tcp.LAB.TEST and alice
// is served to the Exchange stand-in; the TGT step shows what DNS returned
// and which KDC answered. A realm DNS does not know fails at the TGT step
// naming the query and the server. Issue 23 item 3.
func TestLabKDCFromDNS(t *testing.T) {
	lab := labenv.Up(t)
	dnsServer := net.JoinHostPort(lab.Raw["LAB_DC_ADDR"], "53")
	u := lab.User("alice")

	cfg := labConfig(t, lab)
	cfg.KCD.Domains = []config.DomainPair{{Domain: lab.Realm}}
	cfg.Segmesh.DNSServer = dnsServer
	rep := Run(context.Background(), Options{Config: cfg, CertPEM: readFile(t, u.Cert), ChainPEM: readFile(t, u.Chain)})
	if !rep.OK {
		t.Fatalf("failed at %s: %+v", rep.FailedStep, rep.Steps)
	}
	d := stepOf(rep, StepTGT).Detail
	for _, want := range []string{"KDC " + lab.KDCDirect, "_kerberos._tcp." + lab.Realm + " from " + dnsServer, lab.DCHost + ":88 (priority 0, weight 100) = " + lab.Raw["LAB_DC_ADDR"]} {
		if !strings.Contains(d, want) {
			t.Errorf("TGT detail lacks %q: %s", want, d)
		}
	}

	cfg = labConfig(t, lab)
	cfg.KCD.Domains = []config.DomainPair{{Domain: "NOWHERE.LAB.TEST"}}
	cfg.Segmesh.DNSServer = dnsServer
	rep = Run(context.Background(), Options{Config: cfg, CertPEM: readFile(t, u.Cert), ChainPEM: readFile(t, u.Chain)})
	s := stepOf(rep, StepTGT)
	if rep.FailedStep != StepTGT || !strings.Contains(s.Cause, "_kerberos._tcp.NOWHERE.LAB.TEST from "+dnsServer) {
		t.Fatalf("failed at %q with %q, want the TGT step naming the query and the server", rep.FailedStep, s.Cause)
	}
}

// TestLabGlobalCatalogFromDNS: cert.mapping.ldap.url ldaps:/// (no host)
// finds the lab's Global Catalog by _gc._tcp.lab.test at the Samba DNS and
// maps bob by userCertificate over TLS on 3269, the certificate checked
// against dc1.lab.test. Issue 23 item 3.
func TestLabGlobalCatalogFromDNS(t *testing.T) {
	lab := labenv.Up(t)
	cfg := labConfig(t, lab)
	cfg.Gateway.CertMappingLDAPURL = "ldaps:///"
	cfg.Segmesh.DNSServer = net.JoinHostPort(lab.Raw["LAB_DC_ADDR"], "53")
	u := lab.User("bob")
	rep := Run(context.Background(), Options{Config: cfg, CertPEM: readFile(t, u.Cert), ChainPEM: readFile(t, u.Chain)})
	if !rep.OK {
		t.Fatalf("failed at %s: %+v", rep.FailedStep, rep.Steps)
	}
	if rep.User == nil || rep.User.Source != "ldap_mapping" || !strings.EqualFold(rep.User.UPN, "bob.smith@lab.test") {
		t.Fatalf("user %+v, want bob.smith@lab.test from the LDAP mapping", rep.User)
	}
	if d := stepOf(rep, StepMapping).Detail; !strings.Contains(d, "Global Catalog "+lab.DCHost+" ("+lab.Raw["LAB_DC_ADDR"]+":3269) from DNS SRV _gc._tcp.lab.test") {
		t.Errorf("mapping detail does not say which Global Catalog DNS gave: %s", d)
	}
}

// TestLabKDCOutsideRealmRefused: a DNS server (the in-process one, standing
// in for a spoofed answer) whose _kerberos._tcp.LAB.TEST names the lab's
// real KDC under a host outside lab.test: the TGT step fails naming the
// host, the domain and kcd.domains[].domainController, and nothing is sent
// to it; the same KDC named inside lab.test serves alice. Attacker review
// 2, "left".
func TestLabKDCOutsideRealmRefused(t *testing.T) {
	lab := labenv.Up(t)
	u := lab.User("alice")
	dns := dnstest.Start(t)
	for _, tc := range []struct {
		host string
		ok   bool
	}{
		{host: "dc1.lab.test.attacker.example"},
		{host: "kdc.attacker.example"},
		{host: "dc1." + strings.ToLower(lab.Realm), ok: true},
	} {
		t.Run(tc.host, func(t *testing.T) {
			dns.SetSRV("_kerberos._tcp."+lab.Realm, dns.Record(t, tc.host, lab.KDCDirect, 0, 100))
			cfg := labConfig(t, lab)
			cfg.KCD.Domains = []config.DomainPair{{Domain: lab.Realm}}
			cfg.Segmesh.DNSServer = dns.Addr()
			rep := Run(context.Background(), Options{Config: cfg, CertPEM: readFile(t, u.Cert), ChainPEM: readFile(t, u.Chain)})
			if tc.ok {
				if !rep.OK {
					t.Fatalf("failed at %s: %+v", rep.FailedStep, rep.Steps)
				}
				return
			}
			s := stepOf(rep, StepTGT)
			if rep.FailedStep != StepTGT {
				t.Fatalf("failed at %q (%s), want the TGT step", rep.FailedStep, s.Cause)
			}
			all := s.Cause + " " + s.Fix
			for _, w := range []string{tc.host, "outside " + strings.ToLower(lab.Realm), "kcd.domains[].domainController"} {
				if !strings.Contains(all, w) {
					t.Errorf("TGT step lacks %q: %s", w, all)
				}
			}
		})
	}
}
