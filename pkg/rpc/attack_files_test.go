package rpc

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/pkg/safefile/safefiletest"
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
		for _, kind := range append(safefiletest.Kinds(), safefiletest.Large) {
			t.Run(which+"/"+string(kind), func(t *testing.T) {
				files := p.leaf(t, "edge", "spiffe://segmesh/edge")
				target := map[string]*string{"certFile": &files.CertFile, "keyFile": &files.KeyFile, "caFile": &files.CAFile}[which]
				bad := filepath.Join(t.TempDir(), which)
				unblock := safefiletest.Make(t, kind, bad)
				*target = bad
				var err error
				safefiletest.Within(t, "ClientCredentials", unblock, func() { _, err = ClientCredentials(files) })
				if err == nil || !strings.Contains(err.Error(), which) {
					t.Errorf("err = %v, want a refusal naming segmesh.grpc.%s", err, which)
				}
			})
		}
	}
}
