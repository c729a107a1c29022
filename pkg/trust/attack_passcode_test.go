package trust

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/internal/testpki"
)

// TestAttackTrustProblemsHideThePasscode: since c005997 the edge's
// Validate opens the trust store, so `config check` and `run` print
// pkg/trust's problems. Whatever is wrong with the PFX (wrong passcode,
// garbage, truncated, a PEM where a PFX is named, a PFX among PEM files),
// no problem's text, value or wrapped error may show the passcode.
// Attacker review of pkg/problem; held.
func TestAttackTrustProblemsHideThePasscode(t *testing.T) {
	const passcode = "Zq9-unique-passcode-4711"
	dir := t.TempDir()
	ca := newCA(t, "Passcode CA")
	good := opensslPFX(t, passcode, []*testpki.Cert{ca})
	files := map[string][]byte{
		"wrong.pfx":     opensslPFX(t, "another-passcode", []*testpki.Cert{ca}),
		"garbage.pfx":   []byte("not a pfx " + passcode),
		"truncated.pfx": good[:len(good)/2],
		"pem.pfx":       pemOf(ca),
		"ca.pem":        pemOf(ca),
		"good.pfx":      good,
	}
	for name, data := range files {
		writeFile(t, filepath.Join(dir, name), data)
	}
	tests := []struct{ name, path string }{
		{"wrong passcode", "wrong.pfx"},
		{"garbage", "garbage.pfx"},
		{"truncated", "truncated.pfx"},
		{"a PEM named .pfx", "pem.pfx"},
		{"a PFX among PEM files", "ca.pem, good.pfx"},
		{"missing file", "missing.pfx"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := Validate(Spec{TrustStorePath: tt.path, Passcode: passcode, BaseDir: dir})
			if len(ps) == 0 {
				t.Fatal("no problem reported")
			}
			for _, p := range ps {
				texts := []string{p.String(), p.Error(), p.Value, p.Message, p.Fix}
				if p.Err != nil {
					texts = append(texts, p.Err.Error())
				}
				for _, s := range texts {
					// garbage.pfx holds the passcode in its bytes: a
					// problem quoting the file's content would show it.
					if strings.Contains(s, passcode) {
						t.Errorf("a problem shows the passcode: %q", s)
					}
				}
			}
		})
	}
}
