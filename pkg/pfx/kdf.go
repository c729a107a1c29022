package pfx

import (
	"hash"
	"unicode/utf16"
)

// passwordForms holds the encodings of one password that PKCS#12 files use.
type passwordForms struct {
	// utf8 is the password for PBES2 (RFC 8018 section 3 and what openssl and Windows do).
	utf8 []byte
	// bmp lists candidate encodings for the MAC and the PKCS#12 PBE schemes, best first.
	// After a MAC check it holds only the one that matched.
	bmp [][]byte
}

// passwords returns the forms of password to try.
func passwords(password string) passwordForms {
	forms := passwordForms{utf8: []byte(password), bmp: [][]byte{bmpString(password)}}
	if password == "" {
		// Some writers (openssl given no password at all) feed the KDF zero bytes instead of
		// the two NULs of an empty BMPString.
		forms.bmp = append(forms.bmp, nil)
		return forms
	}
	for i := 0; i < len(password); i++ {
		if password[i] >= 0x80 {
			// openssl before 1.1.0 took each byte of a UTF-8 password for one character.
			b := make([]byte, 0, 2*len(password)+2)
			for j := 0; j < len(password); j++ {
				b = append(b, 0, password[j])
			}
			forms.bmp = append(forms.bmp, append(b, 0, 0))
			break
		}
	}
	return forms
}

// bmpString encodes s as RFC 7292 appendix B.1 wants: big-endian UTF-16 (openssl writes
// characters beyond the BMP as surrogate pairs) followed by two NUL bytes.
func bmpString(s string) []byte {
	units := utf16.Encode([]rune(s))
	b := make([]byte, 0, 2*len(units)+2)
	for _, u := range units {
		b = append(b, byte(u>>8), byte(u))
	}
	return append(b, 0, 0)
}

// Purpose bytes ("ID") of the PKCS#12 KDF, RFC 7292 appendix B.3.
const (
	kdfKey = 1
	kdfIV  = 2
	kdfMAC = 3
)

// pkcs12KDF is the key derivation of RFC 7292 appendix B.2, used for the MAC key and by the
// pbeWithSHAAnd... schemes. password is already in BMPString form.
func pkcs12KDF(newHash func() hash.Hash, id byte, password, salt []byte, iterations, size int) []byte {
	h := newHash()
	u, v := h.Size(), h.BlockSize()
	d := make([]byte, v)
	for i := range d {
		d[i] = id
	}
	// I = S || P, each repeated to a whole number of v-byte blocks.
	in := append(fill(salt, v), fill(password, v)...)
	b := make([]byte, v)
	out := make([]byte, 0, size+u)
	var a []byte
	for len(out) < size {
		h.Reset()
		h.Write(d)
		h.Write(in)
		a = h.Sum(a[:0])
		for j := 1; j < iterations; j++ {
			h.Reset()
			h.Write(a)
			a = h.Sum(a[:0])
		}
		out = append(out, a...)
		if len(out) >= size {
			break
		}
		for k := range b {
			b[k] = a[k%u]
		}
		// Each block I_j becomes (I_j + B + 1) mod 2^(8v).
		for j := 0; j < len(in); j += v {
			carry := 1
			for k := v - 1; k >= 0; k-- {
				sum := int(in[j+k]) + int(b[k]) + carry
				in[j+k] = byte(sum)
				carry = sum >> 8
			}
		}
	}
	return out[:size]
}

// fill repeats x to the smallest multiple of v bytes that holds it; empty stays empty.
func fill(x []byte, v int) []byte {
	if len(x) == 0 {
		return nil
	}
	n := v * ((len(x) + v - 1) / v)
	out := make([]byte, n)
	for i := range out {
		out[i] = x[i%len(x)]
	}
	return out
}
