//go:build lab

package diagnose

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/internal/labenv"
	"github.com/segmesh/segmesh/pkg/config"
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
