package edge

import (
	"bytes"
	"crypto/tls"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/segmesh/segmesh/pkg/config"
)

// TestCertificateRequestNamesTrustedCAs: a phone holding a Wi-Fi, a VPN and a
// mail certificate picks the one whose issuer the edge's CertificateRequest
// names (as iOS and Android do, and as Go's client does with
// AcceptableCAs). Without the names it has nothing to choose by: here it
// offers its first certificate and is refused. Issue 23 item 5.
func TestCertificateRequestNamesTrustedCAs(t *testing.T) {
	for _, omit := range []bool{false, true} {
		t.Run(map[bool]string{false: "names sent", true: "omitClientCaNames"}[omit], func(t *testing.T) {
			h := newHarness(t, func(c *config.Config) { c.Segmesh.Edge.OmitClientCANames = omit }, options{})
			wifi := newCA(t, "Wi-Fi CA").issue(t, certOpts{cn: "alice-wifi"})
			vpn := newCA(t, "VPN CA").issue(t, certOpts{cn: "alice-vpn"})
			mail := h.ca.issue(t, certOpts{cn: "alice"})
			held := []tls.Certificate{wifi, vpn, mail}

			var mu sync.Mutex
			var seen [][]byte
			c := h.client(nil, false)
			tc := c.Transport.(*http.Transport).TLSClientConfig
			tc.GetClientCertificate = func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
				mu.Lock()
				seen = cri.AcceptableCAs
				mu.Unlock()
				for i := range held {
					if cri.SupportsCertificate(&held[i]) == nil && len(cri.AcceptableCAs) > 0 {
						return &held[i], nil
					}
				}
				return &held[0], nil // nothing to choose by: the first one
			}
			served := !refusedOrForbidden(t, c, h.url(syncPath))

			mu.Lock()
			defer mu.Unlock()
			named := false
			for _, n := range seen {
				if bytes.Equal(n, h.ca.cert.RawSubject) {
					named = true
				}
			}
			switch {
			case !omit && (!named || len(seen) != 1):
				t.Fatalf("CertificateRequest names %d CAs (device CA among them: %v), want exactly the trusted device CA", len(seen), named)
			case !omit && !served:
				t.Fatal("the device picked by the CA names and was still refused")
			case omit && len(seen) != 0:
				t.Fatalf("omitClientCaNames: CertificateRequest still names %d CAs", len(seen))
			case omit && served:
				t.Fatal("without CA names the device's first (Wi-Fi) certificate was served")
			}
			if !omit && !strings.Contains(h.logs.String(), "alice") {
				t.Fatal("no log line for alice's request")
			}
		})
	}
}
