package suite

import (
	"testing"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/services/identity"
	"github.com/segmesh/segmesh/services/ticket"
)

// TestRolesAgreeOnTheDomains: a domain or DC written with spaces around it
// passes config.Parse; before, identity trimmed it and ticket did not
// ("LAB.TEST" against "LAB.TEST "). config.Parse now trims once, with a
// warning, and every role sees the same realm.
func TestRolesAgreeOnTheDomains(t *testing.T) {
	doc := `{"clientCertTrustStorePath": "ca.pem",
	  "kcd": {"enabled": true, "targetSPN": "HTTP/exchange.lab.test", "serviceAccountUserName": "svc_seg", "serviceAccountPassword": "pw.plaintext",
	    "domains": [{"domain": "LAB.TEST ", "domainController": " dc1.lab.test"}, {"domain": " CHILD.LAB.TEST", "domainController": "dc2.child.lab.test"}]}}`
	cfg, report, err := config.Parse(t.TempDir()+"/config.json", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	tc, ic := ticket.ConfigFrom(cfg), identity.ConfigFrom(cfg)
	if tc.Realm != "LAB.TEST" || len(ic.Domains) != 2 || ic.Domains[0] != tc.Realm {
		t.Fatalf("ticket realm %q, identity domains %q", tc.Realm, ic.Domains)
	}
	if len(tc.OtherRealms) != 1 || tc.OtherRealms[0] != ic.Domains[1] {
		t.Fatalf("ticket other realms %q, identity domains %q", tc.OtherRealms, ic.Domains)
	}
	if got := tc.KDCs["LAB.TEST"]; len(got) != 1 || got[0] != "dc1.lab.test:88" {
		t.Fatalf("KDCs %q", tc.KDCs)
	}
	warned := 0
	for _, p := range report.Warnings() {
		if p.Key == "kcd.domains[0].domain" || p.Key == "kcd.domains[0].domainController" || p.Key == "kcd.domains[1].domain" {
			warned++
		}
	}
	if warned != 3 {
		t.Errorf("%d warnings about the spaces, want 3: %v", warned, report.Warnings())
	}
}
