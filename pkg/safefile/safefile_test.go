package safefile_test

import (
	"bytes"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/pkg/safefile"
	"github.com/segmesh/segmesh/pkg/safefile/safefiletest"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "small.pem")
	if err := os.WriteFile(small, []byte("0123456789"), 0o600); err != nil {
		t.Fatal(err)
	}
	fifo, zero, sub := filepath.Join(dir, "fifo"), filepath.Join(dir, "zero"), filepath.Join(dir, "sub")
	unblock := safefiletest.Make(t, safefiletest.FIFO, fifo)
	safefiletest.Make(t, safefiletest.Zero, zero)
	safefiletest.Make(t, safefiletest.Dir, sub)
	for _, tt := range []struct {
		name  string
		path  string
		limit int64
		want  string
		err   error
	}{
		{"within the bound", small, 10, "0123456789", nil},
		{"one byte over", small, 9, "", safefile.ErrTooLarge},
		{"a FIFO without a writer", fifo, 10, "", safefile.ErrNotRegular},
		{"a link to /dev/zero", zero, 10, "", safefile.ErrNotRegular},
		{"a directory", sub, 10, "", safefile.ErrNotRegular},
		{"missing", filepath.Join(dir, "none"), 10, "", os.ErrNotExist},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var got []byte
			var err error
			safefiletest.Within(t, "Read", unblock, func() { got, err = safefile.Read(tt.path, tt.limit) })
			if tt.err == nil {
				if err != nil || !bytes.Equal(got, []byte(tt.want)) {
					t.Fatalf("Read = %q, %v; want %q", got, err, tt.want)
				}
				return
			}
			if !errors.Is(err, tt.err) || got != nil {
				t.Fatalf("Read = %q, %v; want an error wrapping %v", got, err, tt.err)
			}
			if !strings.Contains(err.Error(), tt.path) {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

func TestOpenGivesTheOpenFilesInfo(t *testing.T) {
	p := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(p, make([]byte, 80), 0o640); err != nil {
		t.Fatal(err)
	}
	f, fi, err := safefile.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if fi.Size() != 80 || fi.Mode().Perm() != 0o640 {
		t.Fatalf("FileInfo size %d mode %v, want 80 and 0640", fi.Size(), fi.Mode().Perm())
	}
}

// TestReadKeyInsidePublicFile: a file read as public (Read: a certificate;
// ReadTrusted: a trust store or CA bundle) that holds a PEM private key is
// held to CheckPrivate (ikey, session 10: a world-readable combined PEM was
// read on main, its key open to every local user). Any "... PRIVATE KEY"
// block counts, an encrypted one too; the words in a comment do not.
func TestReadKeyInsidePublicFile(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("modes are not checked on Windows")
	}
	block := func(typ string) []byte {
		return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: []byte("not really DER")})
	}
	cert := block("CERTIFICATE")
	read := map[string]func(string, int64) ([]byte, error){"Read": safefile.Read, "ReadTrusted": safefile.ReadTrusted}
	for _, tt := range []struct {
		name          string
		content       []byte
		mode, dirMode os.FileMode
		want          string // "" accepted; else in the error
	}{
		{"certificate only, 0644", cert, 0o644, 0o755, ""},
		{"the words in a comment, 0644", append([]byte("# the key: -----BEGIN PRIVATE KEY----- goes elsewhere\n"), cert...), 0o644, 0o755, ""},
		{"certificate and PKCS #8 key, 0600", append(cert, block("PRIVATE KEY")...), 0o600, 0o755, ""},
		{"certificate and PKCS #8 key, 0640", append(cert, block("PRIVATE KEY")...), 0o640, 0o755, ""},
		{"certificate and PKCS #8 key, 0644", append(cert, block("PRIVATE KEY")...), 0o644, 0o755, "has mode 0644"},
		{"an RSA key before the certificate, 0604", append(block("RSA PRIVATE KEY"), cert...), 0o604, 0o755, "has mode 0604"},
		{"an EC key, 0644", append(cert, block("EC PRIVATE KEY")...), 0o644, 0o755, "has mode 0644"},
		{"an encrypted key, 0644", append(cert, block("ENCRYPTED PRIVATE KEY")...), 0o644, 0o755, "has mode 0644"},
	} {
		for name, rd := range read {
			t.Run(tt.name+"/"+name, func(t *testing.T) {
				dir := filepath.Join(t.TempDir(), "d")
				if err := os.Mkdir(dir, tt.dirMode); err != nil {
					t.Fatal(err)
				}
				p := filepath.Join(dir, "cert.pem")
				if err := os.WriteFile(p, tt.content, tt.mode); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(p, tt.mode); err != nil {
					t.Fatal(err)
				}
				got, err := rd(p, 1<<20)
				if tt.want == "" {
					if err != nil || string(got) != string(tt.content) {
						t.Fatalf("%s = %q, %v; want the content", name, got, err)
					}
					return
				}
				e, ok := errors.AsType[*safefile.ExposedError](err)
				if !ok || !e.HoldsKey || got != nil {
					t.Fatalf("%s = %q, %v; want nothing and an *ExposedError that HoldsKey", name, got, err)
				}
				if msg := e.Explain(p, "replace"); !strings.Contains(msg, "holds a private key") || !strings.Contains(msg, tt.want) {
					t.Errorf("Explain = %q; want the key and %q", msg, tt.want)
				}
				if !strings.HasPrefix(e.Fix, "remove the private key from "+p) || !strings.Contains(e.Fix, "chmod 600 "+p) {
					t.Errorf("Fix = %q; want the key removed or the file made private", e.Fix)
				}
			})
		}
	}
}
