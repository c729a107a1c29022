//go:build lab

package reliability

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmesh/segmesh/internal/labenv"
	"github.com/segmesh/segmesh/test/reliability/segproc"
)

// runToExit runs segmesh with args and returns its exit code and output,
// failing the test if it still runs after 30 s.
func runToExit(t *testing.T, args ...string) (int, string) {
	t.Helper()
	p := segproc.Spawn(t, args...)
	code, ok := p.Wait(30 * time.Second)
	if !ok {
		t.Fatalf("segmesh %s still running after 30 s (it should have refused to start):\n%s", strings.Join(args, " "), tail(p.Output.String(), 20))
	}
	return code, p.Output.String()
}

// TestLabConfigRefused checks that broken configurations stop segmesh at
// start, with a non-zero exit and a message naming the problem: bad JSON
// (line and column), unknown keys (the nearest known key), a missing or
// corrupt trust store and a wrong PFX passcode (which never appears in the
// output). `config check` reports the same and exits non-zero.
func TestLabConfigRefused(t *testing.T) {
	lab := labenv.Up(t)
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	if err := os.WriteFile(garbage, []byte("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	badJSON := "{\n  \"requireClientCertificate\": true,\n  \"kcd\": {\"enabled\": true,,}\n}\n"
	col := strings.Index(strings.Split(badJSON, "\n")[2], ",,") + 2
	for _, tc := range []struct {
		name  string
		raw   string                   // config.json as is, when set
		edit  func(cfg map[string]any) // else a change to the lab's config
		want  []string
		never []string
		check bool // config check refuses it too (it does not open trust files)
	}{
		{name: "bad JSON", raw: badJSON, want: []string{fmt.Sprintf("line 3, column %d", col)}, check: true},
		{name: "unknown top-level key", edit: func(c map[string]any) { c["requireClientCertificat"] = true },
			want: []string{`did you mean "requireClientCertificate"`}, check: true},
		{name: "unknown nested key", edit: func(c map[string]any) { segproc.Set(c, "127.0.0.1:0", "segmesh", "edge", "lisen") },
			want: []string{`did you mean "segmesh.edge.listen"`}, check: true},
		{name: "unknown gateway setting", edit: func(c map[string]any) { segproc.Set(c, "true", "customGatewaySettings", "cert.maping.enabled") },
			want: []string{`did you mean "cert.mapping.enabled"`}, check: true},
		{name: "missing trust store", edit: func(c map[string]any) { c["clientCertTrustStorePath"] = "/nonexistent/segmesh-ca.pem" },
			want: []string{"/nonexistent/segmesh-ca.pem"}},
		{name: "corrupt trust store", edit: func(c map[string]any) { c["clientCertTrustStorePath"] = garbage },
			want: []string{garbage}},
		{name: "wrong PFX passcode", edit: func(c map[string]any) {
			c["clientCertTrustStorePath"] = lab.TrustPFX
			c["clientCertTrustStorePasscode"] = "Wrong-passcode-123.plaintext"
		}, want: []string{lab.TrustPFX}, never: []string{"Wrong-passcode-123", lab.TrustPFXPassword}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var path string
			if tc.raw != "" {
				path = filepath.Join(dir, "config.json")
				if err := os.WriteFile(path, []byte(tc.raw), 0o640); err != nil {
					t.Fatal(err)
				}
			} else {
				cfg := segproc.LabConfig(t, lab)
				tc.edit(cfg)
				path = segproc.WriteConfig(t, dir, cfg)
			}
			runs := [][]string{{"run", "--config", path}}
			if tc.check {
				runs = append(runs, []string{"config", "check", path})
			}
			for _, args := range runs {
				code, out := runToExit(t, args...)
				if code == 0 {
					t.Errorf("segmesh %s exited 0:\n%s", args[0], tail(out, 20))
				}
				for _, w := range tc.want {
					if !strings.Contains(out, w) {
						t.Errorf("segmesh %s: output lacks %q:\n%s", args[0], w, tail(out, 20))
					}
				}
				for _, n := range tc.never {
					if strings.Contains(out, n) {
						t.Errorf("segmesh %s: output holds the secret %q", args[0], n)
					}
				}
			}
		})
	}
}

// TestLabTrustReloadKeepsOld starts segmesh on a copy of the lab's trust
// store (PEM list, then PFX), breaks the file, sends SIGHUP and checks the
// log says the previous trust store is still in use and a new device
// connection is still verified against it.
func TestLabTrustReloadKeepsOld(t *testing.T) {
	lab := labenv.Up(t)
	copyFile := func(t *testing.T, src, dir string) string {
		t.Helper()
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, filepath.Base(src))
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return dst
	}
	for _, kind := range []string{"pem", "pfx"} {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			cfg := segproc.LabConfig(t, lab)
			var victim string
			if kind == "pem" {
				var paths []string
				for _, p := range lab.CAPEM {
					paths = append(paths, copyFile(t, p, dir))
				}
				cfg["clientCertTrustStorePath"] = strings.Join(paths, ",")
				victim = paths[1] // the issuing CA of alice's certificate
			} else {
				victim = copyFile(t, lab.TrustPFX, dir)
				cfg["clientCertTrustStorePath"] = victim
				cfg["clientCertTrustStorePasscode"] = lab.TrustPFXPassword + ".plaintext"
			}
			p := segproc.Start(t, segproc.WriteConfig(t, dir, cfg))
			if r := segproc.Do(segproc.Client(t, lab, "alice"), http.MethodGet, p.URL(segproc.EAS("Sync", "alice")), nil); r.Status != 200 {
				t.Fatalf("alice before the reload: %v", r)
			}
			if err := os.WriteFile(victim, []byte("not a trust store\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			p.Signal(t, syscall.SIGHUP)
			p.WaitLog(t, "reload on SIGHUP failed; the previous state stays in use", 10*time.Second)
			p.WaitLog(t, "previous trust still in use", 10*time.Second)
			// A new connection (new client, new handshake) still verifies.
			if r := segproc.Do(segproc.Client(t, lab, "alice"), http.MethodGet, p.URL(segproc.EAS("Sync", "alice")), nil); r.Status != 200 {
				t.Fatalf("alice after the failed reload: %v", r)
			}
			if r := segproc.Do(segproc.Client(t, lab, "alice-ca3"), http.MethodGet, p.URL(segproc.EAS("Sync", "alice")), nil); r.Status == 200 {
				t.Fatalf("an untrusted CA's certificate was served after the failed reload: %v", r)
			}
			if !p.Running() {
				t.Fatal("segmesh exited on the failed reload")
			}
		})
	}
}
