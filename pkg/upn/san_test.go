package upn_test

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/segmesh/segmesh/internal/testpki"
	"github.com/segmesh/segmesh/pkg/upn"
)

// mintCert returns a self-signed device certificate carrying the given extra
// extensions, parsed back from DER as a TLS stack would see it.
func mintCert(tb testing.TB, exts ...pkix.Extension) *x509.Certificate {
	tb.Helper()
	return testpki.SelfSigned(tb, "device", testpki.Serial(big.NewInt(1)), testpki.Extension(exts...)).Cert
}

// The tests write their DER by hand with their own copy of these numbers,
// not the package's.
func oidSAN() asn1.ObjectIdentifier { return asn1.ObjectIdentifier{2, 5, 29, 17} }
func oidUPN() asn1.ObjectIdentifier { return asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 3} }

const tagOtherName = cbasn1.Tag(0xa0) // [0] constructed, context-specific

// rawSAN builds a SAN extension from hand-written GeneralName bodies.
func rawSAN(tb testing.TB, build func(b *cryptobyte.Builder)) pkix.Extension {
	tb.Helper()
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, build)
	der, err := b.Bytes()
	if err != nil {
		tb.Fatal(err)
	}
	return pkix.Extension{Id: oidSAN(), Value: der}
}

// otherName adds an otherName with the given type-id and an explicitly
// tagged value of the given tag.
func otherName(oid []int, valueTag cbasn1.Tag, value string) func(b *cryptobyte.Builder) {
	return func(b *cryptobyte.Builder) {
		b.AddASN1(tagOtherName, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(oid)
			b.AddASN1(tagOtherName, func(b *cryptobyte.Builder) {
				b.AddASN1(valueTag, func(b *cryptobyte.Builder) { b.AddBytes([]byte(value)) })
			})
		})
	}
}

func mustSAN(tb testing.TB, upns []string, dns ...string) pkix.Extension {
	tb.Helper()
	ext, err := upn.SANExtension(upns, dns...)
	if err != nil {
		tb.Fatal(err)
	}
	return ext
}

func TestFromCertificate(t *testing.T) {
	upnOID := []int{1, 3, 6, 1, 4, 1, 311, 20, 2, 3}
	otherOID := []int{1, 3, 6, 1, 5, 2, 2} // id-pkinit-san, also an otherName
	tests := []struct {
		name     string
		exts     func(tb testing.TB) []pkix.Extension
		want     string
		wantErr  error
		wantMany []string
		wantBad  bool
	}{
		{
			name: "one UPN",
			exts: func(tb testing.TB) []pkix.Extension { return []pkix.Extension{mustSAN(tb, []string{"alice@lab.test"})} },
			want: "alice@lab.test",
		},
		{
			name: "UPN among DNS names",
			exts: func(tb testing.TB) []pkix.Extension {
				return []pkix.Extension{mustSAN(tb, []string{"bob.smith@lab.test"}, "device.lab.test", "other.lab.test")}
			},
			want: "bob.smith@lab.test",
		},
		{
			name: "non-ASCII UPN",
			exts: func(tb testing.TB) []pkix.Extension { return []pkix.Extension{mustSAN(tb, []string{"zoë@lab.test"})} },
			want: "zoë@lab.test",
		},
		{
			name: "other otherName before the UPN is skipped",
			exts: func(tb testing.TB) []pkix.Extension {
				return []pkix.Extension{rawSAN(tb, func(b *cryptobyte.Builder) {
					otherName(otherOID, cbasn1.UTF8String, "not-a-upn")(b)
					otherName(upnOID, cbasn1.UTF8String, "carol@lab.test")(b)
				})}
			},
			want: "carol@lab.test",
		},
		{
			name:    "no SAN",
			exts:    func(testing.TB) []pkix.Extension { return nil },
			wantErr: upn.ErrNoUPN,
		},
		{
			name:    "SAN with DNS names only",
			exts:    func(tb testing.TB) []pkix.Extension { return []pkix.Extension{mustSAN(tb, nil, "device.lab.test")} },
			wantErr: upn.ErrNoUPN,
		},
		{
			name: "only a different otherName",
			exts: func(tb testing.TB) []pkix.Extension {
				return []pkix.Extension{rawSAN(tb, otherName(otherOID, cbasn1.UTF8String, "alice@lab.test"))}
			},
			wantErr: upn.ErrNoUPN,
		},
		{
			name: "two UPNs",
			exts: func(tb testing.TB) []pkix.Extension {
				return []pkix.Extension{mustSAN(tb, []string{"alice@lab.test", "mallory@lab.test"})}
			},
			wantMany: []string{"alice@lab.test", "mallory@lab.test"},
		},
		{
			name: "UPN as IA5String",
			exts: func(tb testing.TB) []pkix.Extension {
				return []pkix.Extension{rawSAN(tb, otherName(upnOID, cbasn1.IA5String, "alice@lab.test"))}
			},
			wantBad: true,
		},
		{
			name: "UPN not UTF-8",
			exts: func(tb testing.TB) []pkix.Extension {
				return []pkix.Extension{rawSAN(tb, otherName(upnOID, cbasn1.UTF8String, "al\xffice@lab.test"))}
			},
			wantBad: true,
		},
		{
			name: "UPN value not explicitly tagged",
			exts: func(tb testing.TB) []pkix.Extension {
				return []pkix.Extension{rawSAN(tb, func(b *cryptobyte.Builder) {
					b.AddASN1(tagOtherName, func(b *cryptobyte.Builder) {
						b.AddASN1ObjectIdentifier(upnOID)
						b.AddASN1(cbasn1.UTF8String, func(b *cryptobyte.Builder) { b.AddBytes([]byte("alice@lab.test")) })
					})
				})}
			},
			wantBad: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cert := mintCert(t, tt.exts(t)...)
			got, err := upn.FromCertificate(cert)
			var many *upn.MultipleUPNError
			var bad *upn.MalformedSANError
			switch {
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("FromCertificate() = %q, %v; want error %v", got, err, tt.wantErr)
				}
			case tt.wantMany != nil:
				if !errors.As(err, &many) || !slices.Equal(many.UPNs, tt.wantMany) {
					t.Fatalf("FromCertificate() = %q, %v; want MultipleUPNError %v", got, err, tt.wantMany)
				}
			case tt.wantBad:
				if !errors.As(err, &bad) {
					t.Fatalf("FromCertificate() = %q, %v; want MalformedSANError", got, err)
				}
			default:
				if err != nil || got != tt.want {
					t.Fatalf("FromCertificate() = %q, %v; want %q", got, err, tt.want)
				}
			}
		})
	}
}

func TestMultipleUPNErrorNamesThem(t *testing.T) {
	err := &upn.MultipleUPNError{UPNs: []string{"a@lab.test", "b@lab.test"}}
	msg := err.Error()
	for _, want := range []string{"a@lab.test", "b@lab.test", "upn: "} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not name %q", msg, want)
		}
	}
}

func TestParseSANMalformed(t *testing.T) {
	tests := []struct {
		name string
		der  []byte
	}{
		{"empty", nil},
		{"not a sequence", []byte{0x04, 0x00}},
		{"trailing data", []byte{0x30, 0x00, 0x00}},
		{"truncated GeneralName", []byte{0x30, 0x03, 0xa0, 0x05, 0x06}},
		{"otherName without OID", []byte{0x30, 0x04, 0xa0, 0x02, 0x04, 0x00}},
		{"UPN otherName with trailing junk", func() []byte {
			der, _ := upn.MarshalSAN([]string{"a@b"})
			// Grow the otherName by one junk byte after its value.
			var b cryptobyte.Builder
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1(tagOtherName, func(b *cryptobyte.Builder) {
					b.AddASN1ObjectIdentifier(oidUPN())
					b.AddASN1(tagOtherName, func(b *cryptobyte.Builder) {
						b.AddASN1(cbasn1.UTF8String, func(b *cryptobyte.Builder) { b.AddBytes([]byte("a@b")) })
						b.AddBytes([]byte{0x05, 0x00})
					})
				})
			})
			if out, err := b.Bytes(); err == nil {
				return out
			}
			return der
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			upns, err := upn.ParseSAN(tt.der)
			var bad *upn.MalformedSANError
			if !errors.As(err, &bad) {
				t.Fatalf("ParseSAN(%x) = %q, %v; want MalformedSANError", tt.der, upns, err)
			}
		})
	}
}

func FuzzExtract(f *testing.F) {
	for _, upns := range [][]string{nil, {"alice@lab.test"}, {"a@b", "c@d"}, {""}} {
		der, err := upn.MarshalSAN(upns, "host.lab.test")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(der)
	}
	f.Add([]byte{0x30, 0x00})
	f.Add([]byte{0x30, 0x04, 0xa0, 0x02, 0x04, 0x00})
	f.Fuzz(func(t *testing.T, der []byte) {
		upns, err := upn.ParseSAN(der)
		if err != nil {
			var bad *upn.MalformedSANError
			if !errors.As(err, &bad) {
				t.Fatalf("ParseSAN error %v is not a MalformedSANError", err)
			}
			return
		}
		// What was extracted must survive a round trip through MarshalSAN.
		again, err := upn.MarshalSAN(upns)
		if err != nil {
			t.Fatal(err)
		}
		back, err := upn.ParseSAN(again)
		if err != nil || !slices.Equal(back, upns) {
			t.Fatalf("round trip of %q = %q, %v", upns, back, err)
		}
	})
}

func BenchmarkFromCertificate(b *testing.B) {
	cert := mintCert(b, mustSAN(b, []string{"bob.smith@lab.test"}, "device.lab.test"))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := upn.FromCertificate(cert); err != nil {
			b.Fatal(err)
		}
	}
}
