package edge

import (
	"errors"
	"testing"

	"github.com/segmesh/segmesh/pkg/crl"
	"github.com/segmesh/segmesh/pkg/crl/crltest"
	crlv1 "github.com/segmesh/segmesh/proto/segmesh/crl/v1"
)

// TestAssemblerParts: a snapshot in parts, its serials packed or repeated,
// is put together whole; a malformed part breaks the stream (errPart) and
// nothing partial comes out.
func TestAssemblerParts(t *testing.T) {
	key := make([]byte, 32)
	chunk := func(from, to int, packed bool, count uint32) *crlv1.IssuerCRL {
		c := &crlv1.IssuerCRL{Issuer: "CN=Device CA", IssuerKey: key, CrlNumber: "7", SerialCount: count}
		for i := from; i < to; i++ {
			if packed {
				c.PackedSerials = crl.AppendPacked(c.PackedSerials, crltest.SerialAt(i))
			} else {
				c.RevokedSerials = append(c.RevokedSerials, crltest.SerialAt(i))
			}
		}
		return c
	}
	part := func(n, of uint32, crls ...*crlv1.IssuerCRL) *crlv1.WatchSnapshotsResponse {
		return &crlv1.WatchSnapshotsResponse{Version: 3, Part: n, Parts: of, Crls: crls}
	}
	truncated := chunk(100, 200, true, 200)
	truncated.PackedSerials = truncated.PackedSerials[:len(truncated.PackedSerials)-3]
	tests := []struct {
		name string
		msgs []*crlv1.WatchSnapshotsResponse
		want int // serials assembled; -1: errPart
	}{
		{"packed", []*crlv1.WatchSnapshotsResponse{part(1, 2, chunk(0, 100, true, 200)), part(2, 2, chunk(100, 200, true, 200))}, 200},
		{"repeated", []*crlv1.WatchSnapshotsResponse{part(1, 2, chunk(0, 100, false, 200)), part(2, 2, chunk(100, 200, false, 200))}, 200},
		{"one message", []*crlv1.WatchSnapshotsResponse{{Version: 3, Crls: []*crlv1.IssuerCRL{chunk(0, 50, false, 0)}}}, 50},
		{"truncated packed list", []*crlv1.WatchSnapshotsResponse{part(1, 2, chunk(0, 100, true, 200)), part(2, 2, truncated)}, -1},
		{"fewer serials than serial_count", []*crlv1.WatchSnapshotsResponse{part(1, 1, chunk(0, 100, true, 101))}, -1},
		{"huge serial_count", []*crlv1.WatchSnapshotsResponse{part(1, 1, chunk(0, 10, true, 1<<31))}, -1},
		{"part out of order", []*crlv1.WatchSnapshotsResponse{part(2, 2, chunk(0, 100, true, 100))}, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var a assembler
			var out []*crl.Index
			var err error
			for i, m := range tc.msgs {
				var done bool
				out, done, err = a.add(m)
				if err != nil {
					break
				}
				if done != (i == len(tc.msgs)-1) {
					t.Fatalf("message %d: done %v", i+1, done)
				}
			}
			if tc.want < 0 {
				if !errors.Is(err, errPart) || out != nil {
					t.Fatalf("err = %v, %d indexes; want errPart and none", err, len(out))
				}
				return
			}
			if err != nil || len(out) != 1 || out[0].Len() != tc.want {
				t.Fatalf("err %v, %d indexes", err, len(out))
			}
			if _, ok := out[0].LookupBytes(crltest.SerialAt(tc.want - 1)); !ok {
				t.Fatal("last serial not in the index")
			}
		})
	}
}
