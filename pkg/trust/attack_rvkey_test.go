package trust

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/internal/testpki"
)

// TestAttackTrustPFXHoldsKey (rvkey, review of a61117f): the trust store
// given as a PFX that was exported with a key (Windows' export wizard
// offers PFX only "with the private key"; run on the CA's own machine, the
// key is the CA's), world-readable. pfx.Decode skips key bags, and a61117f
// looked for PEM blocks only, so Load and Validate accepted it without a
// word: whoever reads the file guesses its passcode offline (or needs
// none, -keypbe NONE) and, with the CA's key, issues a certificate naming
// any user. Refused now as a key file would be; a PFX made with -nokeys,
// as the docs and the lab make it, is accepted as before.
func TestAttackTrustPFXHoldsKey(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("modes are not checked on Windows")
	}
	const passcode = "trust-passcode"
	ca := newCA(t, "Exported CA")
	for _, tt := range []struct {
		name    string
		pfx     func() []byte
		mode    os.FileMode
		refused bool
	}{
		{"with the CA's key, 0644", func() []byte {
			return testpki.OpenSSLPFX(t, passcode, chainOf(ca), ca.Key)
		}, 0o644, true},
		{"with the CA's key unencrypted (-keypbe NONE), 0644", func() []byte {
			return testpki.OpenSSLPFX(t, passcode, chainOf(ca), ca.Key, "-keypbe", "NONE")
		}, 0o644, true},
		{"held: with the CA's key, 0640", func() []byte {
			return testpki.OpenSSLPFX(t, passcode, chainOf(ca), ca.Key)
		}, 0o640, false},
		{"held: -nokeys, 0644", func() []byte { return opensslPFX(t, passcode, []*testpki.Cert{ca}) }, 0o644, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "cas.pfx")
			writeFile(t, p, tt.pfx())
			if err := os.Chmod(p, tt.mode); err != nil {
				t.Fatal(err)
			}
			spec := Spec{TrustStorePath: "cas.pfx", Passcode: passcode, BaseDir: dir}
			_, err := Load(spec)
			var found []string
			for _, pr := range Validate(spec) {
				if pr.Severity == SeverityError {
					found = append(found, pr.String())
				}
			}
			if !tt.refused {
				if err != nil || len(found) > 0 {
					t.Fatalf("Load: %v; Validate: %q; want it accepted", err, found)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "holds a private key") {
				t.Errorf("Load of a 0644 PFX holding the CA's key: %v; want it refused for the key", err)
			}
			if len(found) == 0 || !strings.Contains(strings.Join(found, "\n"), "holds a private key") || !strings.Contains(strings.Join(found, "\n"), "-nokeys") {
				t.Errorf("Validate: %q; want an error naming the key and the export without it", found)
			}
			if strings.Contains(strings.Join(found, "\n"), passcode) {
				t.Errorf("Validate shows the passcode: %q", found)
			}
		})
	}
}
