package crl

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/pkg/safefile/safefiletest"
)

// TestAttackConsoleChainNotRegularAtStart: the crl role reads the console
// chain (clientCertificateChain) at its start and at a reload when no
// local trust store is set. Named as a FIFO without a writer (a plain open
// blocks for ever), a link to /dev/zero (read without end), a directory
// or a 64 MiB file, it is refused at once naming the setting. On main
// trustSpec's os.ReadFile blocked on the FIFO, read /dev/zero without end
// and read a large file whole.
func TestAttackConsoleChainNotRegularAtStart(t *testing.T) {
	for _, kind := range append(safefiletest.Kinds(), safefiletest.Large) {
		t.Run(string(kind), func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "chain.pem")
			unblock := safefiletest.Make(t, kind, p)
			var err error
			safefiletest.Within(t, "trustSpec", unblock, func() { _, err = Config{ConsoleChainFile: p}.trustSpec() })
			if err == nil || !strings.Contains(err.Error(), "clientCertificateChain") {
				t.Fatalf("trustSpec = %v; want a refusal naming clientCertificateChain", err)
			}
		})
	}
}
