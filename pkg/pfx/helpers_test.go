package pfx

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
	"strings"
	"testing"
	"time"
)

// testCA is a CA certificate with its key, minted in the test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func mintCAs(tb testing.TB, n int) []testCA {
	tb.Helper()
	cas := make([]testCA, n)
	for i := range cas {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			tb.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber:          big.NewInt(int64(i + 1)),
			Subject:               pkix.Name{CommonName: "segmesh test CA " + string(rune('A'+i))},
			NotBefore:             time.Now().Add(-time.Hour),
			NotAfter:              time.Now().Add(24 * time.Hour),
			KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
			BasicConstraintsValid: true,
			IsCA:                  true,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			tb.Fatal(err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			tb.Fatal(err)
		}
		cas[i] = testCA{cert: cert, key: key}
	}
	return cas
}

func writeFile(tb testing.TB, path string, data []byte) {
	tb.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		tb.Fatal(err)
	}
}

// opensslPFX writes the CAs (and, with withKey, the first CA's key) to PEM files and runs
// `openssl pkcs12 -export` with args, returning the PFX bytes. It skips the test when
// openssl is not installed.
func opensslPFX(tb testing.TB, cas []testCA, withKey bool, password string, args ...string) []byte {
	tb.Helper()
	bin, err := exec.LookPath("openssl")
	if err != nil {
		tb.Skip("openssl not installed")
	}
	dir := tb.TempDir()
	var certs []byte
	for _, ca := range cas {
		certs = append(certs, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})...)
	}
	writeFile(tb, filepath.Join(dir, "cas.pem"), certs)
	out := filepath.Join(dir, "out.pfx")
	cmd := []string{"pkcs12", "-export", "-in", filepath.Join(dir, "cas.pem"), "-out", out, "-passout", "pass:" + password}
	if withKey {
		der, err := x509.MarshalPKCS8PrivateKey(cas[0].key)
		if err != nil {
			tb.Fatal(err)
		}
		writeFile(tb, filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
		cmd = append(cmd, "-inkey", filepath.Join(dir, "key.pem"))
	} else {
		cmd = append(cmd, "-nokeys")
	}
	cmd = append(cmd, args...)
	c := exec.Command(bin, cmd...)
	c.Env = append(os.Environ(), "LC_ALL=C.UTF-8")
	if outb, err := c.CombinedOutput(); err != nil {
		tb.Fatalf("openssl %s: %v\n%s", strings.Join(cmd, " "), err, outb)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

// sameCerts reports whether got holds exactly the certificates of want, in any order.
func sameCerts(got []*x509.Certificate, want []testCA) bool {
	if len(got) != len(want) {
		return false
	}
	seen := map[string]int{}
	for _, w := range want {
		seen[string(w.cert.Raw)]++
	}
	for _, g := range got {
		if seen[string(g.Raw)] == 0 {
			return false
		}
		seen[string(g.Raw)]--
	}
	return true
}

// nssPFX exports a PFX with NSS's pk12util, which writes BER with indefinite lengths: the
// first CA's key and certificate go through openssl into a fresh NSS database, and
// pk12util exports them with the issuing chain. It skips the test without NSS tools.
func nssPFX(tb testing.TB, cas []testCA, password string) []byte {
	tb.Helper()
	for _, tool := range []string{"certutil", "pk12util"} {
		if _, err := exec.LookPath(tool); err != nil {
			tb.Skip("NSS tools (libnss3-tools) not installed")
		}
	}
	in := opensslPFX(tb, cas, true, password, "-name", "segmesh")
	dir := tb.TempDir()
	writeFile(tb, filepath.Join(dir, "in.p12"), in)
	db := "sql:" + filepath.Join(dir, "db")
	if err := os.Mkdir(filepath.Join(dir, "db"), 0o700); err != nil {
		tb.Fatal(err)
	}
	out := filepath.Join(dir, "out.p12")
	for _, args := range [][]string{
		{"certutil", "-N", "-d", db, "--empty-password"},
		{"pk12util", "-i", filepath.Join(dir, "in.p12"), "-d", db, "-W", password},
		{"pk12util", "-o", out, "-n", "segmesh", "-d", db, "-W", password},
	} {
		if b, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			tb.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, b)
		}
	}
	data, err := os.ReadFile(out)
	if err != nil {
		tb.Fatal(err)
	}
	return data
}
