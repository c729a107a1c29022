package negotiate

// Minimal DER writing for the fixed shapes this package emits.

// lenLen is the number of bytes of a DER length field for n.
func lenLen(n int) int {
	switch {
	case n < 0x80:
		return 1
	case n <= 0xff:
		return 2
	case n <= 0xffff:
		return 3
	case n <= 0xffffff:
		return 4
	default:
		return 5
	}
}

// tlvLen is the size of a TLV with a one-byte tag and n content bytes.
func tlvLen(n int) int { return 1 + lenLen(n) + n }

// appendTL appends a one-byte tag and the DER length n.
func appendTL(b []byte, tag byte, n int) []byte {
	b = append(b, tag)
	switch l := lenLen(n); l {
	case 1:
		return append(b, byte(n))
	default:
		b = append(b, 0x80|byte(l-1))
		for i := l - 2; i >= 0; i-- {
			b = append(b, byte(n>>(8*i)))
		}
		return b
	}
}

// intLen is the content length of a DER INTEGER holding v (v >= 0).
func intLen(v int64) int {
	n := 1
	for v > 0x7f {
		v >>= 8
		n++
	}
	return n
}

// appendInt appends a DER INTEGER TLV for v (v >= 0).
func appendInt(b []byte, v int64) []byte {
	n := intLen(v)
	b = append(b, 0x02, byte(n))
	for i := n - 1; i >= 0; i-- {
		b = append(b, byte(v>>(8*i)))
	}
	return b
}

// appendGeneralizedTime appends the 15 characters YYYYMMDDHHMMSSZ.
func appendGeneralizedTime(b []byte, year, month, day, hour, min, sec int) []byte {
	b = append(b, byte('0'+year/1000%10), byte('0'+year/100%10), byte('0'+year/10%10), byte('0'+year%10))
	for _, v := range [...]int{month, day, hour, min, sec} {
		b = append(b, byte('0'+v/10), byte('0'+v%10))
	}
	return append(b, 'Z')
}
