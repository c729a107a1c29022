//go:build lab

package security

import (
	"crypto/tls"
	"crypto/x509/pkix"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmesh/segmesh/internal/labenv"
	"github.com/segmesh/segmesh/internal/testpki"
	"github.com/segmesh/segmesh/test/reliability/segproc"
)

// mint issues a device certificate from the lab's issuing CA (the one that
// signs every lab user) with the given subject CN and SAN UPNs, and returns
// it with its chain, ready for a TLS client.
func mint(t *testing.T, lab *labenv.Env, cn string, upns ...string) tls.Certificate {
	t.Helper()
	caDir := filepath.Join(lab.Dir, "pki", "ca")
	ca := testpki.LoadCA(t, filepath.Join(caDir, "inter.pem"), filepath.Join(caDir, "inter.key"))
	return ca.Device(t, cn, testpki.Subject(pkix.Name{CommonName: cn, Organization: []string{"Segmesh Lab"}}),
		testpki.CDP("http://cdp.lab.test/inter.crl"), testpki.UPN(upns...)).TLS()
}

// clientWith returns an HTTP client presenting cert (none when nil).
func clientWith(t *testing.T, lab *labenv.Env, cert *tls.Certificate) *http.Client {
	t.Helper()
	var certs []tls.Certificate
	if cert != nil {
		certs = append(certs, *cert)
	}
	tr := &http.Transport{TLSClientConfig: segproc.TLSConfig(t, lab, certs...)}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// TestLabHostileCertificates presents certificates that must not get a
// request to Exchange: none, an untrusted CA's, expired, not yet valid,
// without the clientAuth EKU, a UPN in a realm not configured, two UPNs,
// and UPNs or subjects holding LDAP filter metacharacters and NUL bytes.
// Each is refused (in the handshake or with 403, never 5xx), and segmesh
// serves alice normally afterwards.
func TestLabHostileCertificates(t *testing.T) {
	lab := labenv.Up(t)
	p := segproc.Start(t, segproc.WriteConfig(t, t.TempDir(), segproc.LabConfig(t, lab)))
	lab1 := func(name string) *tls.Certificate { c := segproc.UserCert(t, lab, name); return &c }
	minted := func(cn string, upns ...string) *tls.Certificate { c := mint(t, lab, cn, upns...); return &c }
	for _, tc := range []struct {
		name string
		cert *tls.Certificate
	}{
		{"no certificate", nil},
		{"untrusted CA", lab1("alice-ca3")},
		{"expired", lab1("alice-expired")},
		{"not yet valid", lab1("alice-notyet")},
		{"wrong EKU", lab1("alice-wrongeku")},
		{"realm not configured", minted("x", "x@other.example")},
		{"two UPNs", minted("two", "alice@lab.test", "bob.smith@lab.test")},
		{"filter metacharacters in UPN", minted("meta", "*)(userPrincipalName=*@lab.test")},
		{"wildcard UPN", minted("star", "*@lab.test")},
		{"NUL after the UPN", minted("nul", "alice@lab.test\x00.other.example")},
		{"NUL inside the UPN", minted("nul2", "alice\x00@lab.test")},
		{"metacharacters and NUL in subject, no UPN", minted("*)(uid=*)(|(cn=*\x00")},
		{"metacharacters in subject, UPN of alice's realm", minted("*)(sAMAccountName=alice", "nobody@lab.test")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := segproc.Do(clientWith(t, lab, tc.cert), http.MethodGet, p.URL(segproc.EAS("Sync", "alice")), nil)
			if e, ok := r.Echo(); ok {
				t.Fatalf("reached Exchange as %q", e.RemoteUser)
			}
			switch {
			case r.Err != nil:
				// Refused in the handshake.
			case r.Status == http.StatusForbidden:
			default:
				t.Fatalf("%v, want a handshake refusal or 403", r)
			}
		})
	}
	if !p.Running() {
		t.Fatal("segmesh exited")
	}
	r := segproc.Do(segproc.Client(t, lab, "alice"), http.MethodGet, p.URL(segproc.EAS("Sync", "alice")), nil)
	if e, ok := r.Echo(); !ok || segproc.Account(e.RemoteUser) != "alice" {
		t.Fatalf("alice afterwards: %v", r)
	}
	if testing.Verbose() {
		t.Log(p.Output.String())
	}
	for _, bad := range []string{"panic", "filter compile", "Bad search filter"} {
		if strings.Contains(p.Output.String(), bad) {
			t.Errorf("the log holds %q:\n%s", bad, p.Output.String())
		}
	}
}
