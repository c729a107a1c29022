package pfx

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBERToDER(t *testing.T) {
	tests := []struct {
		name string
		ber  string
		der  string
		err  string
	}{
		{"DER unchanged", "3006020103040100", "3006020103040100", ""},
		{"indefinite SEQUENCE", "30800201030000", "3003020103", ""},
		{"nested indefinite", "3080a08002010100000000", "3005a003020101", ""},
		{"constructed OCTET STRING", "2480040201020401030000", "0403010203", ""},
		{"nested constructed OCTET STRING", "24082406040101040102", "04020102", ""},
		{"non-minimal length", "30810302010a", "300302010a", ""},
		{"IMPLICIT [0] segments kept", "a0800401aa0000", "a0030401aa", ""},
		{"long content gets a long length", "0481ff" + strings.Repeat("00", 255), "0481ff" + strings.Repeat("00", 255), ""},
		{"empty", "", "", "truncated"},
		{"missing end of contents", "3080020103", "", "without end"},
		{"indefinite primitive", "0480", "", "primitive"},
		{"high tag number", "1f0100", "", "high tag"},
		{"truncated content", "300502", "", "truncated"},
		{"length too long", "3085000000000100", "", "bad ASN.1 length"},
		{"trailing bytes", "050000", "", "trailing"},
		{"bad OCTET STRING segment", "24030201010000", "", "not an OCTET STRING"},
		{"too deep", strings.Repeat("3080", 40) + strings.Repeat("0000", 40), "", "nested deeper"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := berToDER(unhex(t, tt.ber))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !errors.Is(err, ErrMalformed) {
					t.Fatalf("berToDER = %x, %v; want an error with %q", got, err, tt.err)
				}
				return
			}
			if err != nil || hex.EncodeToString(got) != tt.der {
				t.Fatalf("berToDER = %x, %v; want %s", got, err, tt.der)
			}
		})
	}
}

// TestBERToDERKeepsCorpus: every committed file but the NSS one is DER already and must
// come through unchanged, or the MAC would not match.
func TestBERToDERKeepsCorpus(t *testing.T) {
	for _, c := range readCorpus(t) {
		data, err := os.ReadFile(c.path)
		if err != nil {
			t.Fatal(err)
		}
		got, err := berToDER(data)
		if err != nil {
			t.Fatalf("%s: %v", c.path, err)
		}
		isNSS := strings.HasPrefix(filepath.Base(c.path), "nss-")
		if unchanged := bytes.Equal(got, data); unchanged == isNSS {
			t.Errorf("%s: unchanged = %v, want %v", c.path, unchanged, !isNSS)
		}
	}
}

func TestDecodeNSS(t *testing.T) {
	cas := mintCAs(t, 1)
	data := nssPFX(t, cas, "nss-Passw0rd")
	if data[1] != 0x80 {
		t.Fatalf("pk12util wrote a definite-length file (%x); the test needs BER", data[:4])
	}
	got, err := Decode(data, "nss-Passw0rd")
	if err != nil {
		t.Fatal(err)
	}
	if !sameCerts(got, cas) {
		t.Fatalf("got %d certificates, want the CA", len(got))
	}
	if _, err := Decode(data, "wrong"); !errors.Is(err, ErrIncorrectPassword) {
		t.Fatalf("wrong password: %v", err)
	}
}
