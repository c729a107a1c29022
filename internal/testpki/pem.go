package testpki

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// PEM returns the certificates as concatenated PEM CERTIFICATE blocks.
func PEM(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

// PEM returns c's certificate as a PEM CERTIFICATE block.
func (c *Cert) PEM() []byte { return PEM(c.Cert) }

// KeyPEM returns c's key as a PEM PKCS #8 PRIVATE KEY block.
func (c *Cert) KeyPEM(tb testing.TB) []byte {
	tb.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(c.Key)
	if err != nil {
		tb.Fatalf("testpki: marshal key of %s: %v", c.Cert.Subject, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// WriteFiles writes c and its Chain to dir/name.pem and its key to
// dir/name.key, both mode 0600, and returns the two paths.
func (c *Cert) WriteFiles(tb testing.TB, dir, name string) (certFile, keyFile string) {
	tb.Helper()
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
	writeFile(tb, certFile, PEM(append([]*x509.Certificate{c.Cert}, c.Chain...)...))
	writeFile(tb, keyFile, c.KeyPEM(tb))
	return certFile, keyFile
}

// LoadCA reads a CA certificate and its PKCS #8 key from PEM files (the first
// block of each), such as the lab's issuing CA, to issue certificates with.
// Unless the certificate is self-signed, certificates it issues carry it in
// their Chain; its own issuers are not known.
func LoadCA(tb testing.TB, certFile, keyFile string) *Cert {
	tb.Helper()
	cert, err := x509.ParseCertificate(readPEM(tb, certFile))
	if err != nil {
		tb.Fatalf("testpki: parse %s: %v", certFile, err)
	}
	key, err := x509.ParsePKCS8PrivateKey(readPEM(tb, keyFile))
	if err != nil {
		tb.Fatalf("testpki: parse %s: %v", keyFile, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		tb.Fatalf("testpki: %s: %T cannot sign", keyFile, key)
	}
	return &Cert{Cert: cert, Key: signer}
}

// CertFile reads the first certificate of a PEM file, such as a lab user's
// certificate.
func CertFile(tb testing.TB, path string) *x509.Certificate {
	tb.Helper()
	c, err := x509.ParseCertificate(readPEM(tb, path))
	if err != nil {
		tb.Fatalf("testpki: parse %s: %v", path, err)
	}
	return c
}

// readPEM returns the bytes of the first PEM block of a file.
func readPEM(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("testpki: %v", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		tb.Fatalf("testpki: %s: no PEM block", path)
	}
	return blk.Bytes
}

// OpenSSLPFX runs `openssl pkcs12 -export` over the certificates (and key,
// when not nil, which goes with the first certificate; -nokeys otherwise)
// with the extra args, and returns the PFX. It skips the test when openssl is
// not installed: the point is a file as a real tool writes it.
func OpenSSLPFX(tb testing.TB, password string, certs []*x509.Certificate, key crypto.Signer, args ...string) []byte {
	tb.Helper()
	bin, err := exec.LookPath("openssl")
	if err != nil {
		tb.Skip("openssl not installed")
	}
	dir := tb.TempDir()
	in, out := filepath.Join(dir, "certs.pem"), filepath.Join(dir, "out.pfx")
	writeFile(tb, in, PEM(certs...))
	cmd := []string{"pkcs12", "-export", "-in", in, "-out", out, "-passout", "pass:" + password}
	if key != nil {
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			tb.Fatalf("testpki: marshal key: %v", err)
		}
		keyFile := filepath.Join(dir, "key.pem")
		writeFile(tb, keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
		cmd = append(cmd, "-inkey", keyFile)
	} else {
		cmd = append(cmd, "-nokeys")
	}
	cmd = append(cmd, args...)
	c := exec.Command(bin, cmd...)
	c.Env = append(os.Environ(), "LC_ALL=C.UTF-8") // non-ASCII passwords
	if b, err := c.CombinedOutput(); err != nil {
		tb.Fatalf("testpki: openssl %s: %v\n%s", strings.Join(cmd, " "), err, b)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		tb.Fatalf("testpki: %v", err)
	}
	return data
}

// writeFile writes data to path with mode 0600.
func writeFile(tb testing.TB, path string, data []byte) {
	tb.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		tb.Fatalf("testpki: %v", err)
	}
}
