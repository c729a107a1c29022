package safefile_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
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
