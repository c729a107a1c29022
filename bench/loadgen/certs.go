package loadgen

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// oidUPN is Microsoft's UPN otherName (szOID_NT_PRINCIPAL_NAME).
var oidUPN = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 3}

// oidSAN is the subjectAltName extension.
var oidSAN = asn1.ObjectIdentifier{2, 5, 29, 17}

// LoadCA reads a PEM CA certificate and its PEM private key (PKCS#8, SEC 1 or
// PKCS#1).
func LoadCA(certFile, keyFile string) (*x509.Certificate, crypto.Signer, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, nil, fmt.Errorf("loadgen: read CA certificate: %w", err)
	}
	b, _ := pem.Decode(certPEM)
	if b == nil {
		return nil, nil, fmt.Errorf("loadgen: %s holds no PEM certificate", certFile)
	}
	ca, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("loadgen: parse CA certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("loadgen: read CA key: %w", err)
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return nil, nil, fmt.Errorf("loadgen: %s holds no PEM key", keyFile)
	}
	var key any
	if key, err = x509.ParsePKCS8PrivateKey(kb.Bytes); err != nil {
		if key, err = x509.ParseECPrivateKey(kb.Bytes); err != nil {
			if key, err = x509.ParsePKCS1PrivateKey(kb.Bytes); err != nil {
				return nil, nil, errors.New("loadgen: CA key is neither PKCS#8, SEC 1 nor PKCS#1")
			}
		}
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, nil, errors.New("loadgen: CA key cannot sign")
	}
	return ca, signer, nil
}

// upnSAN encodes a subjectAltName holding one UPN otherName.
func upnSAN(upn string) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(oidUPN)
			b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.UTF8String, func(b *cryptobyte.Builder) { b.AddBytes([]byte(upn)) })
			})
		})
	})
	return b.Bytes()
}

// MintOptions says what Mint makes.
type MintOptions struct {
	// N is the number of certificates.
	N int
	// UPN returns the UPN written into certificate i's SAN; nil writes none.
	UPN func(i int) string
	// Chain appends the CA certificate to each chain sent in the handshake.
	Chain bool
	// Now is the clock (validity starts an hour before it); nil means time.Now.
	Now func() time.Time
}

// Mint makes N client certificates (ECDSA P-256, clientAuth) signed by ca.
func Mint(ca *x509.Certificate, caKey crypto.Signer, o MintOptions) ([]tls.Certificate, error) {
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	t := now()
	out := make([]tls.Certificate, 0, o.N)
	for i := 0; i < o.N; i++ {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("loadgen: generate key: %w", err)
		}
		serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
		if err != nil {
			return nil, fmt.Errorf("loadgen: serial: %w", err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: serial,
			Subject:      pkix.Name{Organization: []string{"segload"}, CommonName: fmt.Sprintf("segload-device-%06d", i)},
			NotBefore:    t.Add(-time.Hour),
			NotAfter:     t.Add(24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}
		if o.UPN != nil {
			san, err := upnSAN(o.UPN(i))
			if err != nil {
				return nil, fmt.Errorf("loadgen: encode SAN: %w", err)
			}
			tmpl.ExtraExtensions = []pkix.Extension{{Id: oidSAN, Value: san}}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
		if err != nil {
			return nil, fmt.Errorf("loadgen: sign certificate %d: %w", i, err)
		}
		leaf, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("loadgen: parse certificate %d: %w", i, err)
		}
		c := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
		if o.Chain {
			c.Certificate = append(c.Certificate, ca.Raw)
		}
		out = append(out, c)
	}
	return out, nil
}

// LoadDirs loads cert.pem and key.pem from every directory matching glob
// (for example /var/tmp/segmesh-lab/pki/users/user*), sorted by name.
func LoadDirs(glob string) ([]tls.Certificate, error) {
	dirs, err := filepath.Glob(glob)
	if err != nil {
		return nil, fmt.Errorf("loadgen: glob %q: %w", glob, err)
	}
	sort.Strings(dirs)
	var out []tls.Certificate
	for _, d := range dirs {
		c, err := tls.LoadX509KeyPair(filepath.Join(d, "cert.pem"), filepath.Join(d, "key.pem"))
		if err != nil {
			return nil, fmt.Errorf("loadgen: load %s: %w", d, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("loadgen: no certificate directories match %q", glob)
	}
	return out, nil
}

// Rotation hands out certificates round robin, one per TLS handshake.
type Rotation struct {
	certs []tls.Certificate
	next  atomic.Uint64
}

// NewRotation returns a rotation over certs (may be empty: no certificate).
func NewRotation(certs []tls.Certificate) *Rotation {
	return &Rotation{certs: certs}
}

// GetClientCertificate fits tls.Config.GetClientCertificate.
func (r *Rotation) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	if len(r.certs) == 0 {
		return &tls.Certificate{}, nil
	}
	i := r.next.Add(1) - 1
	return &r.certs[i%uint64(len(r.certs))], nil
}

// Handshakes returns how many certificates were handed out.
func (r *Rotation) Handshakes() uint64 { return r.next.Load() }

// Len returns the number of certificates.
func (r *Rotation) Len() int { return len(r.certs) }
