package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/internal/testpki"
)

func TestDiagnoseCommand(t *testing.T) {
	dir := t.TempDir()
	writeCert(t, filepath.Join(dir, "ca.pem"), testpki.NewCA(t, "Lab Device CA"))
	// A device certificate no trusted CA issued.
	writeCert(t, filepath.Join(dir, "device.pem"),
		testpki.NewCA(t, "Other CA").Device(t, "alice", testpki.UPN("alice@lab.test")))
	cfg := filepath.Join(dir, "config.json")
	doc := `{"clientCertTrustStorePath": "ca.pem", "requireClientCertificate": true,
	  "segmesh": {"edge": {"exchangeUrls": ["http://127.0.0.1:9"]}}}`
	if err := os.WriteFile(cfg, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"kcd": {"enabled": true}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	device := filepath.Join(dir, "device.pem")
	cases := []struct {
		name string
		args []string
		code int
		out  []string // in stdout
		err  []string // in stderr
	}{
		{"no cert", []string{"--config", cfg}, 2, nil, []string{"needs --cert"}},
		{"stray argument", []string{"--config", cfg, device}, 2, nil, []string{"did you mean --cert"}},
		{"config errors", []string{"--config", bad, "--cert", device}, 1, nil, []string{"has errors", "kcd.targetSPN"}},
		{"text", []string{"--config", cfg, "--cert", device}, 1,
			[]string{"✓ certificate", "✗ trust", "cause:", "fix:", "Microsoft Management Console", "– exchange", "skipped: needs a chain to a trusted CA", "FAILED at trust"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := run(t, append([]string{"diagnose"}, tc.args...)...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, tc.code, out, errOut)
			}
			for _, w := range tc.out {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tc.err {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
		})
	}
	t.Run("json", func(t *testing.T) {
		code, out, _ := run(t, "diagnose", "--json", "--config", cfg, "--cert", device)
		if code != 1 {
			t.Fatalf("exit %d", code)
		}
		var rep struct {
			OK         bool   `json:"ok"`
			FailedStep string `json:"failed_step"`
			Steps      []struct {
				Name, Status, Code, Fix string
			} `json:"steps"`
		}
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, out)
		}
		if rep.OK || rep.FailedStep != "trust" || len(rep.Steps) != 8 || rep.Steps[1].Status != "fail" || rep.Steps[1].Code != "unknown_authority" {
			t.Fatalf("report %+v", rep)
		}
	})
}
