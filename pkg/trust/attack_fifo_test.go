package trust

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestAttackTrustStoreNotRegular (attacker review rvconf): every reload
// and `config check` run the edge's and the crl role's Validate, which read
// clientCertTrustStorePath here, and trust.Reloader polls it. A path
// naming a FIFO (no writer: a plain open blocks for ever) or a link to
// /dev/zero must be refused, not block the reload or read without end.
// On main Validate blocked on the FIFO.
func TestAttackTrustStoreNotRegular(t *testing.T) {
	dir := t.TempDir()
	fifo, zero := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "zero.pem")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	if err := os.Symlink("/dev/zero", zero); err != nil {
		t.Skipf("symlink: %v", err)
	}
	for _, p := range []string{fifo, zero} {
		done := make(chan []Problem, 1)
		go func() { done <- Validate(Spec{TrustStorePath: p}) }()
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
			t.Fatalf("Validate blocked on %s", p)
		}
		refused := false
		for _, pr := range ps {
			refused = refused || (pr.Severity == SeverityError && pr.Key == KeyPath)
		}
		if !refused {
			t.Errorf("Validate(%s) = %+v; want a refusal of %s", p, ps, KeyPath)
		}
	}
}
