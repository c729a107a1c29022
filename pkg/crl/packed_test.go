package crl

import (
	"bytes"
	"errors"
	"testing"
)

func TestPacked(t *testing.T) {
	long := bytes.Repeat([]byte{0x7f}, 300) // a two-byte length
	var list []byte
	for _, s := range [][]byte{{0x01}, {0x01, 0x02, 0x03}, long} {
		list = AppendPacked(list, s)
	}
	tests := []struct {
		name    string
		in      []byte
		want    [][]byte
		wantErr bool
	}{
		{"empty", nil, nil, false},
		{"three", list, [][]byte{{0x01}, {0x01, 0x02, 0x03}, long}, false},
		{"truncated serial", list[:len(list)-1], [][]byte{{0x01}, {0x01, 0x02, 0x03}}, true},
		{"truncated length", []byte{0x02, 0xaa, 0xbb, 0x80}, [][]byte{{0xaa, 0xbb}}, true},
		{"empty serial", []byte{0x00}, nil, true},
		{"length over the limit", AppendPacked(nil, make([]byte, maxSerial+1)), nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got [][]byte
			n, err := EachPacked(tc.in, func(s []byte) { got = append(got, s) })
			if (err != nil) != tc.wantErr || err != nil && !errors.Is(err, ErrPacked) {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if n != len(got) || len(got) != len(tc.want) {
				t.Fatalf("%d serials (n %d), want %d", len(got), n, len(tc.want))
			}
			for i := range got {
				if !bytes.Equal(got[i], tc.want[i]) {
					t.Fatalf("serial %d = %x, want %x", i, got[i], tc.want[i])
				}
			}
		})
	}
}
