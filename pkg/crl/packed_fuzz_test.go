package crl

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

// FuzzEachPacked feeds EachPacked what the crl role could send the edge as
// packed_serials, and the serials it yields to the index the edge builds
// from them (services/edge's assembler), which decodes them in the
// revocation stream's goroutine. Nothing may panic; an error wraps
// ErrPacked, with f called once per counted serial before it; every
// serial yielded is 1 to maxSerial bytes, a slice of the input, and packs
// back to the same list; and the index finds every serial added.
func FuzzEachPacked(f *testing.F) {
	var list []byte
	for _, s := range [][]byte{{0x01}, {0x00, 0x77}, bytes.Repeat([]byte{0x7f}, 300), bytes.Repeat([]byte{0xff}, 21)} {
		list = AppendPacked(list, s)
	}
	f.Add(list)
	f.Add([]byte{})
	f.Add([]byte{0x00})
	f.Add([]byte{0x02, 0xaa, 0xbb, 0x80})
	f.Add([]byte{0x81, 0x00, 0x01})                                           // a non-minimal length
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}) // a length of 2^64-1
	f.Add(AppendPacked(nil, make([]byte, maxSerial+1)))
	f.Fuzz(func(t *testing.T, data []byte) {
		var got [][]byte
		n, err := EachPacked(data, func(s []byte) { got = append(got, s) })
		if err != nil && !errors.Is(err, ErrPacked) {
			t.Fatalf("error %v does not wrap ErrPacked", err)
		}
		if n != len(got) {
			t.Fatalf("counted %d serials, yielded %d", n, len(got))
		}
		var repacked []byte
		b := NewBuilder(n, len(data))
		for _, s := range got {
			if len(s) == 0 || len(s) > maxSerial {
				t.Fatalf("a serial of %d bytes yielded", len(s))
			}
			if !bytes.Contains(data, s) {
				t.Fatalf("serial %x is not in the input", s)
			}
			repacked = AppendPacked(repacked, s)
			b.Add(s, time.Time{}, 0)
		}
		again, err2 := EachPacked(repacked, func([]byte) {})
		if err2 != nil || again != n {
			t.Fatalf("the yielded serials packed again: %d serials, %v; want %d", again, err2, n)
		}
		ix := b.Build(Meta{})
		for _, s := range got {
			if _, ok := ix.LookupBytes(s); !ok {
				t.Fatalf("serial %x added but not found", s)
			}
		}
	})
}
