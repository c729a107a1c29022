package certmap

import (
	"bytes"
	"strings"
	"testing"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
)

// assertionValue compiles filter with go-ldap, as the client sends it, and
// returns the userCertificate assertion's raw bytes.
func assertionValue(tb testing.TB, filter string) []byte {
	tb.Helper()
	p, err := ldap.CompileFilter(filter)
	if err != nil {
		tb.Fatalf("CompileFilter(%q): %v", filter, err)
	}
	if p.Tag != ldap.FilterAnd || len(p.Children) != 2 {
		tb.Fatalf("filter %q is not a two-term AND: %s", filter, ber.DescribePacket(p))
	}
	oc, cert := p.Children[0], p.Children[1]
	if oc.Tag != ldap.FilterEqualityMatch || oc.Children[0].Data.String() != "objectClass" || oc.Children[1].Data.String() != "user" {
		tb.Fatalf("first term of %q is not objectClass=user", filter)
	}
	if cert.Tag != ldap.FilterEqualityMatch || cert.Children[0].Data.String() != "userCertificate" {
		tb.Fatalf("second term of %q is not a userCertificate equality", filter)
	}
	return cert.Children[1].Data.Bytes()
}

func TestUserCertificateFilter(t *testing.T) {
	every := make([]byte, 256)
	for i := range every {
		every[i] = byte(i)
	}
	tests := []struct {
		name string
		der  []byte
		want string
	}{
		{"DER header", []byte{0x30, 0x82, 0x01, 0x0a}, `(&(objectClass=user)(userCertificate=\30\82\01\0a))`},
		{"filter metacharacters", []byte("*()\\"), `(&(objectClass=user)(userCertificate=\2a\28\29\5c))`},
		{"NUL bytes", []byte{0, 0, 0}, `(&(objectClass=user)(userCertificate=\00\00\00))`},
		{"injection attempt", []byte("*)(objectClass=*"), `(&(objectClass=user)(userCertificate=\2a\29\28\6f\62\6a\65\63\74\43\6c\61\73\73\3d\2a))`},
		{"every byte value", every, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := userCertificateFilter(tt.der)
			if tt.want != "" && got != tt.want {
				t.Fatalf("filter = %s\nwant     %s", got, tt.want)
			}
			if strings.ContainsAny(got[len("(&(objectClass=user)(userCertificate="):len(got)-2], "()*\x00") {
				t.Fatalf("filter value carries a raw metacharacter: %q", got)
			}
			if v := assertionValue(t, got); !bytes.Equal(v, tt.der) {
				t.Fatalf("assertion value = %x, want %x", v, tt.der)
			}
		})
	}
}

func TestEscapeBytes(t *testing.T) {
	if got := EscapeBytes([]byte{0xff, 'a', 0}); got != `\ff\61\00` {
		t.Fatalf("EscapeBytes = %q", got)
	}
	if got := EscapeBytes(nil); got != "" {
		t.Fatalf("EscapeBytes(nil) = %q", got)
	}
}

func FuzzUserCertificateFilter(f *testing.F) {
	f.Add([]byte{0x30, 0x82})
	f.Add([]byte("*)(uid=*))(|(uid=*"))
	f.Add([]byte{0, '\\', '(', ')', '*', 0xff, 0xc3, 0x28})
	f.Fuzz(func(t *testing.T, der []byte) {
		filter := userCertificateFilter(der)
		if len(filter) != len("(&(objectClass=user)(userCertificate=))")+3*len(der) {
			t.Fatalf("filter length %d for %d bytes", len(filter), len(der))
		}
		if len(der) == 0 {
			return // an empty assertion value is legal but never sent: Map refuses it
		}
		if v := assertionValue(t, filter); !bytes.Equal(v, der) {
			t.Fatalf("round trip: %x != %x", v, der)
		}
	})
}

func BenchmarkUserCertificateFilter(b *testing.B) {
	der := bytes.Repeat([]byte{0x30, 0x82, 0xa5, 0x5a}, 300) // a typical 1.2 kB certificate
	b.ReportAllocs()
	for b.Loop() {
		_ = userCertificateFilter(der)
	}
}
