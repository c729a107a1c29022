//go:build lab

package diagnose

import (
	"context"
	"crypto/x509/pkix"
	"path/filepath"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/internal/labenv"
	"github.com/segmesh/segmesh/internal/testpki"
)

// TestLabAlternativeUPNSuffix: xavier's UPN is on the lab domain's
// alternative UPN suffix corp.example (uPNSuffixes), which is no configured
// domain, and the lab's config.json maps no suffix
// (segmesh.identity.upnSuffixRealms is empty). His device certificate is
// served to Exchange: the S4U2Self for the enterprise name goes to LAB.TEST's
// KDC, which resolves it. A certificate on a suffix the forest does not hold
// is refused at S4U2Self, and the fix names the suffix, the realm asked and
// the settings. Issue 23 item 1.
func TestLabAlternativeUPNSuffix(t *testing.T) {
	lab := labenv.Up(t)
	caDir := filepath.Dir(lab.CAPEM[0])
	ca := testpki.LoadCA(t, filepath.Join(caDir, "inter.pem"), filepath.Join(caDir, "inter.key"))
	ghost := ca.Device(t, "ghost", testpki.Subject(pkix.Name{CommonName: "ghost", Organization: []string{"Segmesh Lab"}}),
		testpki.UPN("ghost@nowhere.example")).PEM()

	t.Run("xavier@corp.example is served", func(t *testing.T) {
		cfg := labConfig(t, lab)
		if len(cfg.Segmesh.Identity.UPNSuffixRealms) != 0 {
			t.Fatalf("the lab config maps UPN suffixes: %v", cfg.Segmesh.Identity.UPNSuffixRealms)
		}
		u := lab.User("xavier")
		rep := Run(context.Background(), Options{Config: cfg, CertPEM: readFile(t, u.Cert), ChainPEM: readFile(t, u.Chain)})
		if !rep.OK {
			t.Fatalf("failed at %s: %+v", rep.FailedStep, rep.Steps)
		}
		if rep.User == nil || !strings.EqualFold(rep.User.UPN, "xavier@corp.example") || rep.User.Realm != lab.Realm {
			t.Fatalf("user %+v, want xavier@corp.example in %s", rep.User, lab.Realm)
		}
		for _, s := range rep.Steps {
			if s.Name == StepMapping && !strings.Contains(s.Detail, "corp.example is no configured domain") {
				t.Errorf("mapping detail %q does not say the suffix is asked of the primary realm", s.Detail)
			}
		}
		// Samba keeps the enterprise name in the ticket's client name:
		// Apache sees xavier\@corp.example@LAB.TEST.
		if rep.Exchange == nil || !strings.HasPrefix(strings.ToLower(rep.Exchange.RemoteUser), "xavier") {
			t.Fatalf("Exchange saw %+v, want xavier", rep.Exchange)
		}
	})

	t.Run("a suffix the forest does not hold names the suffix and the settings", func(t *testing.T) {
		rep := Run(context.Background(), Options{Config: labConfig(t, lab), CertPEM: ghost})
		if rep.OK || rep.FailedStep != StepS4U2Self {
			t.Fatalf("failed step %q (ok %v), want %s: %+v", rep.FailedStep, rep.OK, StepS4U2Self, rep.Steps)
		}
		for _, s := range rep.Steps {
			if s.Name != StepS4U2Self {
				continue
			}
			if s.Code != "KDC_ERR_C_PRINCIPAL_UNKNOWN" {
				t.Errorf("code %q, want KDC_ERR_C_PRINCIPAL_UNKNOWN", s.Code)
			}
			for _, w := range []string{"nowhere.example is not a configured domain", "KDC of LAB.TEST", "ghost@nowhere.example",
				"segmesh.identity.upnSuffixRealms", "kcd.domains", "uPNSuffixes"} {
				if !strings.Contains(s.Fix, w) {
					t.Errorf("fix lacks %q:\n%s", w, s.Fix)
				}
			}
		}
	})
}
