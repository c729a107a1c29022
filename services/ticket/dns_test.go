package ticket

import (
	"strings"
	"testing"

	"github.com/segmesh/segmesh/pkg/config"
)

// TestDomainWithoutDomainController: a domain written without a domain
// controller is accepted and found by DNS (Discovered), a domain with one
// keeps it, and segmesh.dnsServer must be an address. Issue 23 item 3.
func TestDomainWithoutDomainController(t *testing.T) {
	base := func() config.Config {
		c := config.Default()
		c.KCD = config.KCD{Enabled: true, TargetSPN: "HTTP/a.lab.test", ServiceAccountUserName: "svc_seg",
			Domains: []config.DomainPair{{Domain: "LAB.TEST"}, {Domain: "CHILD.LAB.TEST", DomainController: "dc3.child.lab.test"}}}
		return c
	}
	c := base()
	got := ConfigFrom(&c)
	if addrs, ok := got.KDCs["LAB.TEST"]; !ok || len(addrs) != 0 || !got.Discovered() || got.Realm != "LAB.TEST" ||
		strings.Join(got.KDCs["CHILD.LAB.TEST"], ",") != "dc3.child.lab.test:88" || strings.Join(got.OtherRealms, ",") != "CHILD.LAB.TEST" {
		t.Fatalf("got %+v", got)
	}
	for _, p := range Validate(&c) {
		if strings.HasPrefix(p.Key, "kcd.domains") {
			t.Errorf("a domain without a domain controller is a problem: %+v", p)
		}
	}
	tests := []struct {
		server string
		bad    bool
	}{{"127.0.0.2", false}, {"10.0.0.10:53", false}, {"", false}, {"http://dns", true}, {"10.0.0.10:0", true}}
	for _, tt := range tests {
		c := base()
		c.Segmesh.DNSServer = tt.server
		var hit bool
		for _, p := range Validate(&c) {
			hit = hit || p.Key == "segmesh.dnsServer"
		}
		if hit != tt.bad {
			t.Errorf("dnsServer %q: problem %v, want %v", tt.server, hit, tt.bad)
		}
	}
	c = base()
	c.KCD.Domains[0].DomainController = "dc1.lab.test"
	if ConfigFrom(&c).Discovered() {
		t.Error("every domain has a DC, yet Discovered")
	}
}
