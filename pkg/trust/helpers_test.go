package trust

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/segmesh/segmesh/internal/testpki"
)

// testNow is the fixed time tests verify at.
var testNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// newCA returns a root CA named cn valid around testNow, as are the
// certificates it issues.
func newCA(tb testing.TB, cn string, opts ...testpki.Option) *testpki.Cert {
	tb.Helper()
	return testpki.NewCA(tb, cn, append([]testpki.Option{testpki.At(testNow)}, opts...)...)
}

func pemOf(certs ...*testpki.Cert) []byte {
	return testpki.PEM(chainOf(certs...)...)
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
func opensslPFX(tb testing.TB, password string, certs []*testpki.Cert, args ...string) []byte {
	tb.Helper()
	return testpki.OpenSSLPFX(tb, password, chainOf(certs...), nil, args...)
}

func chainOf(certs ...*testpki.Cert) []*x509.Certificate {
	out := make([]*x509.Certificate, len(certs))
	for i, c := range certs {
		out[i] = c.Cert
	}
	return out
}
