package edge

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/negotiate/negotiatetest"
)

type connKey struct{}

// newTLSExchange starts a fake Exchange over TLS with Extended Protection
// ep, presenting the certificates in turn, one per connection (several
// Exchange servers behind one name); sessions are not resumed, so every
// connection shows its certificate.
func newTLSExchange(t testing.TB, tickets *fakeTickets, ca *testCA, ep negotiatetest.ExtendedProtection, n int) *fakeExchange {
	t.Helper()
	certs := make([]tls.Certificate, n)
	for i := range certs {
		certs[i] = ca.issue(t, certOpts{cn: "mail.lab.test", eku: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			dns: []string{"mail.lab.test"}, ips: []net.IP{net.IPv4(127, 0, 0, 1)}})
	}
	var mu sync.Mutex
	shown := map[net.Conn]*x509.Certificate{}
	var next atomic.Int64
	fx := &fakeExchange{t: t, tickets: tickets, seen: map[string]bool{}, ep: ep}
	fx.srv = httptest.NewUnstartedServer(http.HandlerFunc(fx.serve))
	// GetConfigForClient, not GetCertificate: without SNI (an IP address)
	// GetCertificate is skipped for httptest's default certificate.
	fx.srv.TLS = &tls.Config{GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		c := certs[int(next.Add(1)-1)%n]
		mu.Lock()
		shown[hello.Conn] = c.Leaf
		mu.Unlock()
		return &tls.Config{Certificates: []tls.Certificate{c}, SessionTicketsDisabled: true}, nil
	}}
	fx.srv.Config.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		return context.WithValue(ctx, connKey{}, c)
	}
	fx.presented = func(r *http.Request) *x509.Certificate {
		tc, _ := r.Context().Value(connKey{}).(*tls.Conn)
		if tc == nil {
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		return shown[tc.NetConn()]
	}
	fx.srv.StartTLS()
	t.Cleanup(fx.srv.Close)
	return fx
}

// TestExtendedProtectionRequired: Exchange with Extended Protection set to
// Require accepts the edge's Negotiate header only when it carries the
// tls-server-end-point binding of the certificate presented on the very
// connection that carries the request, also when the servers behind the
// name present different certificates.
func TestExtendedProtectionRequired(t *testing.T) {
	for _, tc := range []struct {
		name  string
		certs int
	}{
		{"one certificate", 1},
		{"a certificate per connection", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			exCA := newCA(t, "Exchange CA")
			var fx *fakeExchange
			h := newHarness(t, func(c *config.Config) {
				c.Segmesh.Edge.ExchangeCAFile = writeFile(t, t.TempDir(), "exchange-ca.pem", exCA.pem)
			}, options{})
			fx = newTLSExchange(t, h.tickets, exCA, negotiatetest.Require, tc.certs)
			u, _ := h.edge.upstreams.route.Load().urls[0].Parse(fx.srv.URL)
			h.edge.upstreams.route.Store(newRoute([]*url.URL{u}, nil))
			h.edge.upstreams.transport.DisableKeepAlives = tc.certs > 1 // a new connection, a new certificate
			cert := h.ca.issue(t, certOpts{cn: "alice"})
			c := h.client(&cert, false)
			for i := range 4 {
				resp, body := get(t, c, h.url(syncPath), nil)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("request %d: %d %s\n%s", i, resp.StatusCode, body, h.logs.String())
				}
			}
			if n := fx.badAuth.Load(); n != 0 {
				t.Fatalf("Exchange refused %d requests", n)
			}
		})
	}
}
