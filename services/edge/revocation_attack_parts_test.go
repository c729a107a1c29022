package edge

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/segmesh/segmesh/pkg/crl"
	"github.com/segmesh/segmesh/pkg/crl/crltest"
	crlv1 "github.com/segmesh/segmesh/proto/segmesh/crl/v1"
)

// TestAttackAssemblerParts feeds the edge's snapshot assembler parts that
// break the packed wire (dcc3488) or the parts protocol: a malformed packed
// list, a serial_count that lies, packed and repeated serials mixed, an
// issuer sent twice, and a parts count that changes under way (a partial
// snapshot applied as complete). Each is refused as errPart (the edge
// reconnects and keeps the snapshot it has) or assembled whole; serial 0
// (revoked) must be in every index applied. Attacker review; #17's
// assembler.
func TestAttackAssemblerParts(t *testing.T) {
	keyA, keyB := make([]byte, 32), make([]byte, 32)
	keyB[0] = 1
	issuer := func(key []byte, count uint32, packed []byte, repeated ...[]byte) *crlv1.IssuerCRL {
		return &crlv1.IssuerCRL{Issuer: "CN=CA " + string('A'+rune(key[0])), IssuerKey: key, CrlNumber: "7", SerialCount: count,
			PackedSerials: packed, RevokedSerials: repeated}
	}
	pack := func(from, to int) []byte {
		var b []byte
		for i := from; i < to; i++ {
			b = crl.AppendPacked(b, crltest.SerialAt(i))
		}
		return b
	}
	part := func(n, of uint32, crls ...*crlv1.IssuerCRL) *crlv1.WatchSnapshotsResponse {
		return &crlv1.WatchSnapshotsResponse{Version: 9, Part: n, Parts: of, Crls: crls}
	}
	raw := func(b ...byte) []byte { return b }
	overflow := append(binary.AppendUvarint(nil, 1<<16), make([]byte, 1<<16)...)
	tests := []struct {
		name string
		msgs []*crlv1.WatchSnapshotsResponse
		want map[byte]int // serials per issuer (key's first byte); nil: errPart
	}{
		{"varint longer than 64 bits", []*crlv1.WatchSnapshotsResponse{part(1, 1, issuer(keyA, 0, raw(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)))}, nil},
		{"length runs past the end", []*crlv1.WatchSnapshotsResponse{part(1, 1, issuer(keyA, 0, raw(5, 1, 2)))}, nil},
		{"empty serial", []*crlv1.WatchSnapshotsResponse{part(1, 1, issuer(keyA, 0, append(pack(0, 3), 0)))}, nil},
		{"serial over 65535 bytes", []*crlv1.WatchSnapshotsResponse{part(1, 1, issuer(keyA, 0, overflow))}, nil},
		{"serial_count larger than sent", []*crlv1.WatchSnapshotsResponse{part(1, 1, issuer(keyA, 11, pack(0, 10)))}, nil},
		{"serial_count smaller than sent", []*crlv1.WatchSnapshotsResponse{part(1, 1, issuer(keyA, 9, pack(0, 10)))}, nil},
		{"serial_count near 2^32 with a few serials", []*crlv1.WatchSnapshotsResponse{part(1, 1, issuer(keyA, 1<<32-1, pack(0, 10)))}, nil},
		{"packed and repeated mixed in one chunk", []*crlv1.WatchSnapshotsResponse{part(1, 1, issuer(keyA, 12, pack(0, 10), crltest.SerialAt(10), crltest.SerialAt(11)))},
			map[byte]int{0: 12}},
		{"the same serial packed and repeated", []*crlv1.WatchSnapshotsResponse{part(1, 1, issuer(keyA, 11, pack(0, 10), crltest.SerialAt(0)))},
			map[byte]int{0: 10}},
		{"issuer split across parts, packed then repeated", []*crlv1.WatchSnapshotsResponse{part(1, 2, issuer(keyA, 20, pack(0, 10))), part(2, 2, issuer(keyA, 20, nil, serials(10, 20)...))},
			map[byte]int{0: 20}},
		{"an issuer again after another, short the second time", []*crlv1.WatchSnapshotsResponse{part(1, 1, issuer(keyA, 10, pack(0, 10)), issuer(keyB, 1, pack(0, 1)), issuer(keyA, 10, pack(5, 10)))}, nil},
		{"parts count shrinks under way", []*crlv1.WatchSnapshotsResponse{part(1, 3, issuer(keyA, 10, pack(0, 10))), part(2, 2, issuer(keyB, 1, pack(0, 1)))}, nil},
		{"parts count grows under way", []*crlv1.WatchSnapshotsResponse{part(1, 2, issuer(keyA, 10, pack(0, 10))), part(2, 3, issuer(keyB, 1, pack(0, 1)))}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var a assembler
			var out []*crl.Index
			var err error
			done := false
			for _, m := range tc.msgs {
				out, done, err = a.add(m)
				if err != nil || done {
					break
				}
			}
			if tc.want == nil {
				if !errors.Is(err, errPart) || out != nil {
					t.Fatalf("err = %v, done %v, %d indexes; want errPart and nothing applied", err, done, len(out))
				}
				return
			}
			if err != nil || !done {
				t.Fatalf("err = %v, done %v", err, done)
			}
			got := map[byte]int{}
			for _, ix := range out {
				k := ix.Meta().Key
				got[k[0]] += ix.Len()
				if _, ok := ix.LookupBytes(crltest.SerialAt(0)); !ok {
					t.Errorf("issuer %d: serial 0 not revoked", k[0])
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("issuers %v, want %v", got, tc.want)
			}
			for k, n := range tc.want {
				if got[k] != n {
					t.Errorf("issuer %d: %d serials, want %d", k, got[k], n)
				}
			}
		})
	}
}

func serials(from, to int) [][]byte {
	var out [][]byte
	for i := from; i < to; i++ {
		out = append(out, crltest.SerialAt(i))
	}
	return out
}
