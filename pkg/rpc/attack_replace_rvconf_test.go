package rpc

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/pkg/safefile"
	"github.com/segmesh/segmesh/pkg/safefile/safefiletest"
)

// TestAttackRoleFilesOthersMayReadOrReplace (session 9's rvconf): the
// gRPC caFile decides which client certificates the ticket role serves,
// the keyFile is the edge's identity towards it. Whoever can add a CA of
// theirs to caFile issues a certificate naming an allowed peer; whoever
// can read keyFile is the edge: either asks the ticket role for any
// user's service ticket. On main both were read with no check (isafe2's
// CheckReplaceable left them out): every refuse row was accepted by
// ServerCredentials and ClientCredentials, and so by the start, a reload
// and `config check` (startFileProblems calls ClientCredentials). The key
// rows: a certFile or caFile read as public that holds a private key too
// (a combined PEM) gave that key to every local user, who then calls the
// ticket role as the edge or, with a CA's key, issues any peer's
// certificate: accepted on main (ikey, session 10).
func TestAttackRoleFilesOthersMayReadOrReplace(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("modes are not checked on Windows")
	}
	for _, tt := range []struct {
		name  string
		which string // certFile, keyFile, caFile
		mode  os.FileMode
		dir   os.FileMode // the mode of the directory of its own holding it; 0: 0700
		key   bool        // the leaf's private key appended to the file
		want  string      // "" accepted; else in the error
	}{
		{"the CA others may write", "caFile", 0o666, 0, false, "has mode 0666"},
		{"the CA group may write", "caFile", 0o664, 0, false, "has mode 0664"},
		{"the CA in a directory others may write", "caFile", 0o644, 0o777, false, "has mode 0777"},
		{"the key others may read", "keyFile", 0o644, 0, false, "has mode 0644"},
		{"the key group may write", "keyFile", 0o660, 0, false, "has mode 0660"},
		{"the key in a directory others may write", "keyFile", 0o600, 0o777, false, "has mode 0777"},
		{"the CA world-readable", "caFile", 0o644, 0, false, ""},
		{"the key group-readable (a Secret with fsGroup)", "keyFile", 0o440, 0, false, ""},
		{"the certificate world-readable", "certFile", 0o644, 0, false, ""},
		{"the certificate others may write (ikey, session 10: accepted on main)", "certFile", 0o646, 0, false, "has mode 0646"},
		{"the certificate in a directory others may write", "certFile", 0o644, 0o777, false, "has mode 0777"},
		{"the certificate and its key world-readable", "certFile", 0o644, 0, true, "holds a private key another local user could read or replace: has mode 0644"},
		{"the CA bundle and a key world-readable", "caFile", 0o644, 0, true, "holds a private key another local user could read or replace: has mode 0644"},
		{"the certificate and its key 0600", "certFile", 0o600, 0, true, ""},
		{"the CA bundle and a key 0640", "caFile", 0o640, 0, true, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := newPKI(t)
			files := p.leaf(t, "edge", "spiffe://segmesh/edge")
			target := map[string]*string{"certFile": &files.CertFile, "keyFile": &files.KeyFile, "caFile": &files.CAFile}[tt.which]
			content, err := os.ReadFile(*target)
			if err != nil {
				t.Fatal(err)
			}
			if tt.key {
				key, err := os.ReadFile(files.KeyFile)
				if err != nil {
					t.Fatal(err)
				}
				content = append(content, key...)
			}
			// Its own copy, in a directory of its own (0700 unless the row
			// names a mode for it).
			*target = safefiletest.Tree{File: tt.mode, Dir: tt.dir}.Make(t, "open", filepath.Base(*target), content)
			_, serr := ServerCredentials(files)
			_, cerr := ClientCredentials(files)
			for side, err := range map[string]error{"ServerCredentials": serr, "ClientCredentials": cerr} {
				if tt.want == "" {
					if err != nil {
						t.Errorf("%s = %v; want accepted", side, err)
					}
					continue
				}
				if err == nil || !errors.Is(err, safefile.ErrExposed) || !strings.Contains(err.Error(), tt.want) ||
					!strings.Contains(err.Error(), "segmesh.grpc."+tt.which) || !strings.Contains(err.Error(), "fix: ") {
					t.Errorf("%s = %v; want a refusal naming segmesh.grpc.%s, %q and the fix", side, err, tt.which, tt.want)
				}
			}
		})
	}
}
