package diagnose

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/dnssrv/dnstest"
)

// TestRunFindsTheKDCInDNS: with kcd.domains[].domainController left out,
// diagnose finds the KDC by _kerberos._tcp.REALM at segmesh.dnsServer, and
// the TGT step says what DNS returned and which KDC answered; without a
// record the step fails naming the query, the server and the settings.
// Issue 23 item 3.
func TestRunFindsTheKDCInDNS(t *testing.T) {
	w := newWorld(t)
	dns := dnstest.Start(t)
	host, port, err := net.SplitHostPort(w.kdc.Addr())
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	dns.SetA("dc1.test.realm", host)
	w.cfg.KCD.Domains = []config.DomainPair{{Domain: testRealm}}
	w.cfg.Segmesh.DNSServer = dns.Addr()

	run := func() Report {
		return Run(context.Background(), Options{Config: w.cfg, CertPEM: w.leaf(t, "alice@test.realm", 42, w.ca), StepTimeout: 5 * time.Second})
	}
	rep := run()
	tgt := stepOf(rep, StepTGT)
	if rep.FailedStep != StepTGT {
		t.Fatalf("no SRV record: failed at %q, want %s", rep.FailedStep, StepTGT)
	}
	for _, want := range []string{"_kerberos._tcp." + testRealm, dns.Addr(), "segmesh.dnsServer", "domainController"} {
		if !strings.Contains(tgt.Cause+tgt.Fix, want) {
			t.Errorf("TGT step lacks %q: cause %q fix %q", want, tgt.Cause, tgt.Fix)
		}
	}

	dns.SetSRV("_kerberos._tcp."+testRealm, dnstest.SRV{Target: "dc1.test.realm", Port: uint16(p), Weight: 100})
	rep = run()
	if !rep.OK {
		t.Fatalf("failed at %s: %+v", rep.FailedStep, rep.Steps)
	}
	d := stepOf(rep, StepTGT).Detail
	for _, want := range []string{"KDC " + w.kdc.Addr(), "_kerberos._tcp." + testRealm + " from " + dns.Addr(), "dc1.test.realm:" + port + " (priority 0, weight 100) = " + host} {
		if !strings.Contains(d, want) {
			t.Errorf("TGT detail lacks %q: %s", want, d)
		}
	}
}

func stepOf(rep Report, name string) StepResult {
	for _, s := range rep.Steps {
		if s.Name == name {
			return s
		}
	}
	return StepResult{}
}
