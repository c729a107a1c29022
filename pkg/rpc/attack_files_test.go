package rpc

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestAttackCredentialsFromAFileSwapped (attacker review rvconf): the
// reload and `config check` check the gRPC certificate, key and CA files
// by path (isRegular) and then read them here; a file swapped between the
// two for a FIFO (no writer: the open blocks for ever, and the reload with
// it) or a link to /dev/zero (read without end, until the process is
// killed for its memory) must fail here too. On main ClientCredentials
// blocked on the FIFO in each of the three places.
func TestAttackCredentialsFromAFileSwapped(t *testing.T) {
	p := newPKI(t)
	for _, which := range []string{"certFile", "keyFile", "caFile"} {
		for _, kind := range []string{"fifo", "zero", "large"} {
			t.Run(which+"/"+kind, func(t *testing.T) {
				files := p.leaf(t, "edge", "spiffe://segmesh/edge")
				target := map[string]*string{"certFile": &files.CertFile, "keyFile": &files.KeyFile, "caFile": &files.CAFile}[which]
				bad := p.dir + "/" + which + "-" + kind
				unblock := func() {}
				switch kind {
				case "fifo":
					if err := syscall.Mkfifo(bad, 0o600); err != nil {
						t.Skipf("mkfifo: %v", err)
					}
					unblock = func() {
						for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
							if w, err := os.OpenFile(bad, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
								_ = w.Close()
								return
							}
						}
					}
				case "zero":
					if err := os.Symlink("/dev/zero", bad); err != nil {
						t.Skipf("symlink: %v", err)
					}
				case "large":
					f, err := os.Create(bad)
					if err != nil {
						t.Fatal(err)
					}
					if err := f.Truncate(64 << 20); err != nil { // sparse
						t.Fatal(err)
					}
					_ = f.Close()
				}
				*target = bad
				done := make(chan error, 1)
				go func() { _, err := ClientCredentials(files); done <- err }()
				var err error
				select {
				case err = <-done:
				case <-time.After(20 * time.Second):
					unblock()
					<-done
					t.Fatalf("ClientCredentials blocked on %s as %s", kind, which)
				}
				if err == nil || !strings.Contains(err.Error(), which) {
					t.Errorf("err = %v, want a refusal naming segmesh.grpc.%s", err, which)
				}
			})
		}
	}
}
