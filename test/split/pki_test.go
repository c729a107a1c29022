//go:build lab

package split

import (
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/segmesh/segmesh/internal/testpki"
)

// trustDomain is the SPIFFE trust domain of the test's inter-role identities.
const trustDomain = "spiffe://segmesh.test/"

// testCA issues the inter-role certificates of one test run.
type testCA struct {
	ca *testpki.Cert
	// File is the CA certificate (PEM), every process's segmesh.grpc.caFile.
	File string
}

// roleCert names the PEM files of one process's inter-role identity.
type roleCert struct {
	Cert, Key string
}

func newTestCA(t testing.TB, dir string) *testCA {
	t.Helper()
	ca := &testCA{ca: testpki.NewCA(t, "segmesh split test CA"), File: filepath.Join(dir, "ca.pem")}
	if err := os.WriteFile(ca.File, ca.ca.PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	return ca
}

// issue writes a certificate with URI SAN spiffe://segmesh.test/<name> (plus
// the given DNS names and IPs, for server verification) and its key.
func (ca *testCA) issue(t testing.TB, dir, name string, dns []string, ips []net.IP) roleCert {
	t.Helper()
	c := ca.ca.Issue(t, "segmesh "+name, testpki.URI(trustDomain+name), testpki.DNS(dns...), testpki.IP(ips...),
		testpki.EKU(x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth))
	certFile, keyFile := c.WriteFiles(t, dir, name)
	return roleCert{Cert: certFile, Key: keyFile}
}
