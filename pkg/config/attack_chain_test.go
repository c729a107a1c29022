package config

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/segmesh/segmesh/pkg/trust"
)

// TestAttackConsoleChainNotRegular (attacker review rvconf): the console
// chain (clientCertificateChain) is read by TrustProblems, the edge's
// Validate, on every reload and config check. A FIFO there (no writer: a
// plain open blocks for ever) or a link to /dev/zero is refused at once.
// On main TrustProblems blocked on the FIFO (and os.ReadFile would read
// /dev/zero without end).
func TestAttackConsoleChainNotRegular(t *testing.T) {
	dir := t.TempDir()
	fifo, zero := filepath.Join(dir, "chain.pem"), filepath.Join(dir, "zero.pem")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	if err := os.Symlink("/dev/zero", zero); err != nil {
		t.Skipf("symlink: %v", err)
	}
	for _, p := range []string{fifo, zero} {
		c := Default()
		c.BaseDir = dir
		c.ClientCertificateChain = p
		done := make(chan []Problem, 1)
		go func() { done <- TrustProblems(&c) }()
		var ps []Problem
		select {
		case ps = <-done:
		case <-time.After(20 * time.Second):
			for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
				if w, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
					_ = w.Close()
					break
				}
			}
			<-done
			t.Fatalf("TrustProblems blocked on %s", p)
		}
		if len(ps) != 1 || ps[0].Key != trust.KeyConsoleChain || ps[0].Severity != SeverityError {
			t.Errorf("TrustProblems(%s) = %+v; want one refusal of %s", p, ps, trust.KeyConsoleChain)
		}
	}
}
