package pfx

import (
	"crypto"
	"crypto/x509"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/internal/testpki"
)

// mintCAs returns n self-signed CAs named segmesh test CA A, B, ….
func mintCAs(tb testing.TB, n int) []*testpki.Cert {
	tb.Helper()
	cas := make([]*testpki.Cert, n)
	for i := range cas {
		cas[i] = testpki.NewCA(tb, "segmesh test CA "+string(rune('A'+i)))
	}
	return cas
}

func writeFile(tb testing.TB, path string, data []byte) {
	tb.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		tb.Fatal(err)
	}
}

// opensslPFX exports the CAs (and, with withKey, the first CA's key) with
// `openssl pkcs12 -export` and args, returning the PFX bytes. It skips the
// test when openssl is not installed.
func opensslPFX(tb testing.TB, cas []*testpki.Cert, withKey bool, password string, args ...string) []byte {
	tb.Helper()
	certs := make([]*x509.Certificate, len(cas))
	for i, ca := range cas {
		certs[i] = ca.Cert
	}
	var key crypto.Signer
	if withKey {
		key = cas[0].Key
	}
	return testpki.OpenSSLPFX(tb, password, certs, key, args...)
}

// sameCerts reports whether got holds exactly the certificates of want, in any order.
func sameCerts(got []*x509.Certificate, want []*testpki.Cert) bool {
	if len(got) != len(want) {
		return false
	}
	seen := map[string]int{}
	for _, w := range want {
		seen[string(w.Cert.Raw)]++
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
func nssPFX(tb testing.TB, cas []*testpki.Cert, password string) []byte {
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
