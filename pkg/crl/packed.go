package crl

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The packed form carries many serials in one byte string: each serial's
// length as an unsigned varint, then its big-endian bytes. The crl role sends
// an issuer's serials to the edge this way (packed_serials): one allocation
// per snapshot part on either side instead of one per serial, which is what
// a repeated bytes field costs (docs/benchmarks.md, "CRL snapshot to the
// edge").

// ErrPacked is a malformed packed serial list.
var ErrPacked = errors.New("malformed packed serial list")

// AppendPacked appends serial to b in the packed form.
func AppendPacked(b, serial []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(serial)))
	return append(b, serial...)
}

// EachPacked calls f with every serial of the packed list b, in order (the
// slice aliases b), and returns how many there were. A truncated list, a
// length over maxSerial or an empty serial is an error wrapping ErrPacked,
// returned before f sees anything past the fault.
func EachPacked(b []byte, f func(serial []byte)) (int, error) {
	n := 0
	for off := 0; off < len(b); {
		l, w := binary.Uvarint(b[off:])
		if w <= 0 {
			return n, fmt.Errorf("%w: bad length at byte %d", ErrPacked, off)
		}
		off += w
		if l == 0 || l > maxSerial || l > uint64(len(b)-off) {
			return n, fmt.Errorf("%w: serial %d of %d bytes at byte %d, %d left", ErrPacked, n+1, l, off, len(b)-off)
		}
		f(b[off : off+int(l)])
		off += int(l)
		n++
	}
	return n, nil
}
