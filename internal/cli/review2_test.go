package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReviewSEGLayoutTrustStore: a config.json copied from a SEG box sits in
// <install>/config and names its trust store config/ssl-certs/CA01.pem (the
// very case of 8a2e4e6). Resolve reads it from <install>, so config check
// (and the edge and CRL roles, which open the trust store the same way)
// must find it there, also written with Windows separators.
func TestReviewSEGLayoutTrustStore(t *testing.T) {
	t.Setenv("SEGMESH_CONFIG_KEY", "")
	t.Setenv("SEGMESH_CONFIG_KEY_FILE", "")
	for _, trustPath := range []string{"config/ssl-certs/ca.pem", `config\ssl-certs\ca.pem`} {
		install := t.TempDir()
		dir := filepath.Join(install, "config")
		if err := os.MkdirAll(filepath.Join(dir, "ssl-certs"), 0o700); err != nil {
			t.Fatal(err)
		}
		m := firstDaySite(t, dir)
		if err := os.Rename(filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ssl-certs", "ca.pem")); err != nil {
			t.Fatal(err)
		}
		setPath(m, "clientCertTrustStorePath", trustPath)
		setPath(m, "kcd.serviceAccountPassword", "Base-Secret-9.plaintext")
		doc, _ := json.MarshalIndent(m, "", "  ")
		p := filepath.Join(dir, "config.json")
		if err := os.WriteFile(p, doc, 0o600); err != nil {
			t.Fatal(err)
		}
		code, out, errOut := run(t, "config", "check", "--json", p)
		var rep checkJSON
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("%s: %v\n%s\n%s", trustPath, err, out, errOut)
		}
		for _, pr := range rep.Problems {
			if pr.Key == "clientCertTrustStorePath" {
				t.Errorf("%s: %s: %s %s", trustPath, pr.Severity, pr.Message, pr.Fix)
			}
		}
		if code != 0 {
			t.Errorf("%s: config check exit %d: %+v", trustPath, code, rep.Problems)
		}
	}
}

// TestReviewCheckJSONNeverPrintsTheSecret: the secret's value appears in no
// output of config check (plain or --json) for the mistakes around it.
func TestReviewCheckJSONNeverPrintsTheSecret(t *testing.T) {
	t.Setenv("SEGMESH_CONFIG_KEY", "")
	t.Setenv("SEGMESH_CONFIG_KEY_FILE", "")
	const s = "Xyzzy-S3cret-4711"
	for name, v := range map[string]any{
		"clear":       s,
		"PLAINTEXT":   s + ".PLAINTEXT",
		"spaces":      " " + s + " .plaintext",
		"bad enc":     "enc:v1:" + s,
		"placeholder": "CHANGE-ME",
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			m := firstDaySite(t, dir)
			setPath(m, "kcd.serviceAccountPassword", v)
			setPath(m, "clientCertTrustStorePasscode", s+".Plaintext")
			doc, _ := json.MarshalIndent(m, "", "  ")
			p := filepath.Join(dir, "config.json")
			if err := os.WriteFile(p, doc, 0o600); err != nil {
				t.Fatal(err)
			}
			for _, args := range [][]string{{"config", "check", "--json", p}, {"config", "check", p}, {"config", "check", "--strict", p}} {
				_, out, errOut := run(t, args...)
				if strings.Contains(out+errOut, s[:8]) {
					t.Errorf("%v prints the secret:\n%s\n%s", args, out, errOut)
				}
			}
		})
	}
}
