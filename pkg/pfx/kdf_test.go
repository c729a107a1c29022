package pfx

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"testing"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

func unhex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestPKCS12KDF(t *testing.T) {
	// Vectors shared with golang.org/x/crypto/pkcs12, which checked them against openssl.
	tests := []struct {
		name     string
		id       byte
		password []byte
		salt     string
		iter     int
		size     int
		want     string
	}{
		{"3DES key, password sesame", kdfKey, bmpString("sesame"), "ffffffffffffffff", 2048, 24,
			"7cd9fd3e2b3be7691a44e3bef0f9ea0fb9b897d4e325d9d1"},
		{"carry into a leading zero byte", kdfKey, []byte{0, 0}, "f37e05b518324b4b", 2048, 24,
			"00f759ff47d14dd03665d5943cb3c4a39a2555c02aed66e1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := pkcs12KDF(sha1.New, tt.id, tt.password, unhex(t, tt.salt), tt.iter, tt.size)
			if !bytes.Equal(got, unhex(t, tt.want)) {
				t.Fatalf("got %x, want %s", got, tt.want)
			}
		})
	}
}

func TestBMPString(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"", "0000"},
		{"sesame", "0073006500730061006d00650000"},
		{"é", "00e90000"},
		{"😀", "d83dde000000"}, // a surrogate pair, as openssl writes it
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := hex.EncodeToString(bmpString(tt.in)); got != tt.want {
				t.Fatalf("bmpString(%q) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestPasswordForms(t *testing.T) {
	tests := []struct {
		in    string
		forms int
	}{
		{"", 2},    // BMP "" and no bytes at all
		{"abc", 1}, // ASCII: one encoding
		{"pä", 2},  // also openssl 1.0's byte-per-character form
		{"😀x€", 2}, // likewise
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got := passwords(tt.in)
			if len(got.bmp) != tt.forms || string(got.utf8) != tt.in {
				t.Fatalf("passwords(%q) = %d BMP forms, utf8 %q; want %d", tt.in, len(got.bmp), got.utf8, tt.forms)
			}
		})
	}
}

func TestReadOctets(t *testing.T) {
	tests := []struct {
		name string
		der  string
		want string
		ok   bool
	}{
		{"primitive", "0403010203", "010203", true},
		{"constructed in segments", "24080402010204020304", "01020304", true},
		{"constructed with a non-OCTET STRING segment", "240402020102", "", false},
		{"wrong tag", "0203010203", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := cryptobyte.String(unhex(t, tt.der))
			got, ok := readOctets(&s, cbasn1.OCTET_STRING, tagOctetConstructed)
			if ok != tt.ok || (ok && hex.EncodeToString(got) != tt.want) {
				t.Fatalf("readOctets = %x, %v; want %s, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}
