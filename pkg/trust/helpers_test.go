package trust

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// testNow is the fixed time tests verify at.
var testNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

var serial atomic.Int64

// issued is a certificate with its key.
type issued struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// certOpts shapes a minted certificate; the zero value is a CA valid around testNow.
type certOpts struct {
	leaf      bool
	eku       []x509.ExtKeyUsage
	notBefore time.Time
	notAfter  time.Time
	dns       []string
}

// mint issues a certificate named cn, signed by parent (self-signed when parent is nil).
func mint(tb testing.TB, cn string, parent *issued, o certOpts) *issued {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	if o.notBefore.IsZero() {
		o.notBefore = testNow.Add(-30 * 24 * time.Hour)
	}
	if o.notAfter.IsZero() {
		o.notAfter = testNow.Add(365 * 24 * time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial.Add(1)),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"segmesh test"}},
		NotBefore:             o.notBefore,
		NotAfter:              o.notAfter,
		BasicConstraintsValid: true,
		IsCA:                  !o.leaf,
		ExtKeyUsage:           o.eku,
		DNSNames:              o.dns,
	}
	if o.leaf {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	} else {
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	}
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return &issued{cert: cert, key: key}
}

func device(tb testing.TB, cn string, parent *issued) *issued {
	tb.Helper()
	return mint(tb, cn, parent, certOpts{leaf: true, eku: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
}

func pemOf(certs ...*issued) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.cert.Raw})...)
	}
	return out
}

func writeFile(tb testing.TB, path string, data []byte) {
	tb.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		tb.Fatal(err)
	}
}

// opensslPFX runs `openssl pkcs12 -export -nokeys` over the certificates and returns the PFX
// bytes; it skips the test without openssl.
func opensslPFX(tb testing.TB, password string, certs []*issued, args ...string) []byte {
	tb.Helper()
	bin, err := exec.LookPath("openssl")
	if err != nil {
		tb.Skip("openssl not installed")
	}
	dir := tb.TempDir()
	in, out := filepath.Join(dir, "in.pem"), filepath.Join(dir, "out.pfx")
	writeFile(tb, in, pemOf(certs...))
	cmd := append([]string{"pkcs12", "-export", "-nokeys", "-in", in, "-out", out, "-passout", "pass:" + password}, args...)
	if b, err := exec.Command(bin, cmd...).CombinedOutput(); err != nil {
		tb.Fatalf("openssl %v: %v\n%s", cmd, err, b)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

func chainOf(certs ...*issued) []*x509.Certificate {
	out := make([]*x509.Certificate, len(certs))
	for i, c := range certs {
		out[i] = c.cert
	}
	return out
}
