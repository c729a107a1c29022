package safefile

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// recordingReader yields n bytes of 'S' (a secret), then err (io.EOF when
// nil), and keeps every buffer it was asked to fill: the memory the
// reader's caller holds the secret in.
type recordingReader struct {
	n    int
	err  error
	bufs [][]byte
}

func (r *recordingReader) Read(p []byte) (int, error) {
	r.bufs = append(r.bufs, p[:cap(p)])
	if r.n == 0 {
		if r.err != nil {
			return 0, r.err
		}
		return 0, io.EOF
	}
	k := min(len(p), r.n, 100)
	copy(p, bytes.Repeat([]byte("S"), k))
	r.n -= k
	return k, nil
}

// TestReadBoundedClearsSecret: readBounded returned the "too large" error
// and a read error with the bytes read so far left in memory, and a
// buffer outgrown on the way (io.ReadAll's) kept its copy even on success
// (ikey, session 10: on main every row's buffer held the secret). A
// secret file's bytes stay in no buffer readBounded lets go of.
func TestReadBoundedClearsSecret(t *testing.T) {
	errDisk := errors.New("input/output error")
	for _, tt := range []struct {
		name    string
		n       int   // bytes the file yields
		size    int64 // the size its FileInfo says
		err     error // the read error after them
		limit   int64
		wantErr bool
	}{
		{"larger than the bound", 5000, 5000, nil, 4096, true},
		{"larger than the bound, grown since its stat", 5000, 10, nil, 4096, true},
		{"a read error half way", 2000, 4000, errDisk, 4096, true},
		{"read whole, grown since its stat", 3000, 10, nil, 4096, false},
		{"read whole", 3000, 3000, nil, 4096, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := &recordingReader{n: tt.n, err: tt.err}
			data, err := readBounded(r, "secret", tt.limit, tt.size)
			if (err != nil) != tt.wantErr {
				t.Fatalf("readBounded = %d bytes, %v; want an error %v", len(data), err, tt.wantErr)
			}
			if !tt.wantErr && (len(data) != tt.n || bytes.Count(data, []byte("S")) != tt.n) {
				t.Fatalf("readBounded = %d bytes; want the %d read", len(data), tt.n)
			}
			for i, b := range r.bufs {
				if len(b) == 0 || cap(data) > 0 && &b[len(b)-1] == &data[:cap(data)][cap(data)-1] {
					continue // the buffer returned (they end alike)
				}
				if n := bytes.Count(b, []byte("S")); n != 0 {
					t.Errorf("buffer %d (of %d bytes) let go of with %d bytes of the secret", i, len(b), n)
				}
			}
		})
	}
}
