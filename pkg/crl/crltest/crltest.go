// Package crltest mints CAs, certificates and CRLs for tests of the crl
// packages and of their users (the crl role, the edge). Keys are ECDSA P-256;
// nothing here is meant for production.
package crltest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"encoding/pem"
	"math/big"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// CA is a certificate authority for tests.
type CA struct {
	// Cert is the CA certificate (CRLSign and CertSign key usage).
	Cert *x509.Certificate
	// Key signs certificates and CRLs.
	Key crypto.Signer
}

// NewCA returns a self-signed CA with the given common name, valid from an
// hour before now for ten years.
func NewCA(tb testing.TB, name string, now time.Time) *CA {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatalf("crltest: key: %v", err)
	}
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		tb.Fatalf("crltest: public key: %v", err)
	}
	ski := sha256.Sum256(spki)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"segmesh test"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		SubjectKeyId:          ski[:20],
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatalf("crltest: CA certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatalf("crltest: parse CA certificate: %v", err)
	}
	return &CA{Cert: cert, Key: key}
}

// Leaf issues a client certificate with the given serial and optional CRL
// distribution points.
func (ca *CA) Leaf(tb testing.TB, serial *big.Int, now time.Time, cdps ...string) *x509.Certificate {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatalf("crltest: key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "device " + serial.String()},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		CRLDistributionPoints: cdps,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		tb.Fatalf("crltest: leaf certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatalf("crltest: parse leaf: %v", err)
	}
	return cert
}

// Revoked is one CRL entry.
type Revoked struct {
	// Serial is the revoked serial number.
	Serial *big.Int
	// At is the revocation time.
	At time.Time
	// Reason is the CRLReason code; 0 omits the extension.
	Reason int
}

// CRLOptions describe a CRL.
type CRLOptions struct {
	// Number is the CRL number; 0 means 1.
	Number int64
	// ThisUpdate is thisUpdate.
	ThisUpdate time.Time
	// NextUpdate is nextUpdate; zero means ThisUpdate plus a day.
	NextUpdate time.Time
	// Revoked are the entries.
	Revoked []Revoked
	// Partition makes the CRL one partition of its issuer's CRLs: an
	// Issuing Distribution Point extension (RFC 5280 5.2.5, critical)
	// naming these URIs as its distributionPoint fullName. Empty: no such
	// name.
	Partition []string
	// OnlyUserCerts sets onlyContainsUserCerts in the Issuing Distribution
	// Point (which is then written even without Partition).
	OnlyUserCerts bool
}

// oidIssuingDP is the Issuing Distribution Point extension (RFC 5280 5.2.5).
var oidIssuingDP = asn1.ObjectIdentifier{2, 5, 29, 28}

// IssuingDP returns the DER of an Issuing Distribution Point naming the
// URIs as its distributionPoint fullName (none: no distributionPoint),
// with onlyContainsUserCerts when onlyUser is set.
func IssuingDP(onlyUser bool, uris ...string) []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		if len(uris) > 0 {
			// distributionPoint [0] DistributionPointName, whose fullName
			// [0] GeneralNames holds uniformResourceIdentifier [6] names.
			b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
					for _, u := range uris {
						b.AddASN1(cbasn1.Tag(6).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes([]byte(u)) })
					}
				})
			})
		}
		if onlyUser {
			b.AddASN1(cbasn1.Tag(1).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddUint8(0xff) })
		}
	})
	return b.BytesOrPanic()
}

// CRL returns a DER CRL made by x509.CreateRevocationList.
func (ca *CA) CRL(tb testing.TB, o CRLOptions) []byte {
	tb.Helper()
	if o.Number == 0 {
		o.Number = 1
	}
	if o.NextUpdate.IsZero() {
		o.NextUpdate = o.ThisUpdate.Add(24 * time.Hour)
	}
	tmpl := &x509.RevocationList{
		Number:     big.NewInt(o.Number),
		ThisUpdate: o.ThisUpdate,
		NextUpdate: o.NextUpdate,
	}
	if len(o.Partition) > 0 || o.OnlyUserCerts {
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, pkix.Extension{Id: oidIssuingDP, Critical: true, Value: IssuingDP(o.OnlyUserCerts, o.Partition...)})
	}
	for _, r := range o.Revoked {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{
			SerialNumber: r.Serial, RevocationTime: r.At, ReasonCode: r.Reason,
		})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, ca.Cert, ca.Key)
	if err != nil {
		tb.Fatalf("crltest: CRL: %v", err)
	}
	return der
}

// PEM wraps a DER CRL in a PEM "X509 CRL" block.
func PEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
}

// SerialAt returns the i-th serial of a large generated CRL: 16 bytes,
// pseudo-random but reproducible, never with a leading zero byte.
func SerialAt(i int) []byte {
	var s [16]byte
	x := uint64(i)*0x9e3779b97f4a7c15 + 0x632be59bd9b4e019
	y := x ^ x>>29*0xbf58476d1ce4e5b9
	binary.BigEndian.PutUint64(s[:8], x^y>>31)
	binary.BigEndian.PutUint64(s[8:], y^x<<7)
	s[0] |= 0x01
	return s[:]
}

// LargeCRL returns a DER CRL with n entries (serials SerialAt(0..n-1), the
// odd ones with reason keyCompromise), signed by ca. It builds the DER
// directly: x509.CreateRevocationList needs about 10 s for a million entries.
func (ca *CA) LargeCRL(tb testing.TB, n int, number int64, thisUpdate, nextUpdate time.Time) []byte {
	tb.Helper()
	utc := func(b *cryptobyte.Builder, t time.Time) {
		b.AddASN1(cbasn1.UTCTime, func(b *cryptobyte.Builder) {
			b.AddBytes([]byte(t.UTC().Format("060102150405Z")))
		})
	}
	algID := func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier([]int{1, 2, 840, 10045, 4, 3, 2}) // ecdsa-with-SHA256
		})
	}
	revokedAt := []byte(thisUpdate.Add(-time.Hour).UTC().Format("060102150405Z"))
	var tb2 cryptobyte.Builder
	tb2.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Int64(1)
		algID(b)
		b.AddBytes(ca.Cert.RawSubject)
		utc(b, thisUpdate)
		utc(b, nextUpdate)
		if n > 0 {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				for i := range n {
					s := SerialAt(i)
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1(cbasn1.INTEGER, func(b *cryptobyte.Builder) {
							if s[0]&0x80 != 0 {
								b.AddUint8(0)
							}
							b.AddBytes(s)
						})
						b.AddASN1(cbasn1.UTCTime, func(b *cryptobyte.Builder) { b.AddBytes(revokedAt) })
						if i%2 == 1 {
							b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
								b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
									b.AddASN1ObjectIdentifier([]int{2, 5, 29, 21})
									b.AddASN1(cbasn1.OCTET_STRING, func(b *cryptobyte.Builder) {
										b.AddASN1Enum(1)
									})
								})
							})
						}
					})
				}
			})
		}
		b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1ObjectIdentifier([]int{2, 5, 29, 35})
					b.AddASN1(cbasn1.OCTET_STRING, func(b *cryptobyte.Builder) {
						b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
							b.AddASN1(cbasn1.Tag(0).ContextSpecific(), func(b *cryptobyte.Builder) {
								b.AddBytes(ca.Cert.SubjectKeyId)
							})
						})
					})
				})
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1ObjectIdentifier([]int{2, 5, 29, 20})
					b.AddASN1(cbasn1.OCTET_STRING, func(b *cryptobyte.Builder) {
						b.AddASN1Int64(number)
					})
				})
			})
		})
	})
	tbs, err := tb2.Bytes()
	if err != nil {
		tb.Fatalf("crltest: build TBS: %v", err)
	}
	digest := sha256.Sum256(tbs)
	sig, err := ca.Key.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		tb.Fatalf("crltest: sign: %v", err)
	}
	var out cryptobyte.Builder
	out.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(tbs)
		algID(b)
		b.AddASN1BitString(sig)
	})
	der, err := out.Bytes()
	if err != nil {
		tb.Fatalf("crltest: build CRL: %v", err)
	}
	return der
}
