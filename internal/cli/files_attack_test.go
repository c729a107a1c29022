package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/pkg/safefile/safefiletest"
)

// TestAttackCLIFilesNotRegular: `segmesh config check` given a config.json
// that is a FIFO without a writer (a plain read blocks for ever), a link
// to /dev/zero (read without end) or a directory, and `segmesh diagnose`
// given such a file as --cert, --key or --chain, end at once with an
// error saying the file is not a regular file. On main both read with
// os.ReadFile: they blocked on the FIFO and read /dev/zero without end.
func TestAttackCLIFilesNotRegular(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.json")
	doc := `{"clientCertTrustStorePath": "ca.pem", "requireClientCertificate": true,
	  "segmesh": {"edge": {"exchangeUrls": ["http://127.0.0.1:9"]}}}`
	if err := os.WriteFile(cfg, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, kind := range safefiletest.Kinds() {
		for _, args := range [][]string{
			{"config", "check", "FILE"},
			{"diagnose", "--config", cfg, "--cert", "FILE"},
			{"diagnose", "--config", cfg, "--upn", "alice@lab.test", "--chain", "FILE"},
		} {
			t.Run(string(kind)+"/"+strings.Join(args[:len(args)-1], " "), func(t *testing.T) {
				p := filepath.Join(t.TempDir(), "file.pem")
				unblock := safefiletest.Make(t, kind, p)
				args := append(append([]string{}, args[:len(args)-1]...), p)
				var code int
				var out, errOut string
				safefiletest.Within(t, strings.Join(args, " "), unblock, func() { code, out, errOut = run(t, args...) })
				if code == 0 || !strings.Contains(out+errOut, "not a regular file") {
					t.Fatalf("exit %d; want a refusal saying the file is not a regular file\n%s%s", code, out, errOut)
				}
			})
		}
	}
}
