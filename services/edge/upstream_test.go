package edge

import (
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/segmesh/segmesh/pkg/config"
)

func TestHTTPSUpstreamVerifiedWithExchangeCA(t *testing.T) {
	backend := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("tls ok"))
	}))
	t.Cleanup(backend.Close)
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: backend.Certificate().Raw})
	for _, tt := range []struct {
		name   string
		ca     []byte
		status int
	}{
		{"trusted", caPEM, 200},
		{"wrong CA", newCA(t, "Other").pem, 502},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(c *config.Config) {
				c.KCD, c.Gateway.RevocationEnabled = config.KCD{}, false
				c.Segmesh.Edge.ExchangeURLs = []string{backend.URL}
				c.Segmesh.Edge.ExchangeCAFile = writeFile(t, t.TempDir(), "exchange-ca.pem", tt.ca)
			}, options{})
			cert := h.ca.issue(t, certOpts{cn: "alice"})
			if resp, body := get(t, h.client(&cert, false), h.url("/EWS/x"), nil); resp.StatusCode != tt.status {
				t.Fatalf("status %d %q, want %d", resp.StatusCode, body, tt.status)
			}
		})
	}
}
