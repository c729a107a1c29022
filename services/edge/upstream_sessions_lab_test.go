//go:build lab

package edge

import (
	"net/url"
	"os"
	"testing"

	"github.com/segmesh/segmesh/internal/labenv"
	"github.com/segmesh/segmesh/pkg/config"
)

// TestLabUpstreamSessionResumes: against the lab's Exchange stand-in
// (Apache, OpenSSL: TLS 1.3 session tickets after the handshake), a second
// connection on every dial path (the transport and the relay, a parked
// Ping) resumes the first one's session, and reports the certificate the
// server presented on the first (the channel binding's).
func TestLabUpstreamSessionResumes(t *testing.T) {
	lab := labenv.Up(t)
	u, err := url.Parse(lab.ExchangeHTTPSURL)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(lab.ExchangeCA)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range upstreamDialPaths {
		t.Run(p.name, func(t *testing.T) {
			h := newHarness(t, func(c *config.Config) {
				c.Segmesh.Edge.ExchangeURLs = []string{u.String()}
				c.Segmesh.Edge.ExchangeCAFile = writeFile(t, t.TempDir(), "exchange-ca.pem", caPEM)
			}, options{})
			var first []byte
			for i, wantResumed := range []bool{false, true} {
				c := p.dial(t, h.edge, u)
				exchangeOnce(t, c, u.Host)
				st := connState(t, c)
				_ = c.Close()
				if st.DidResume != wantResumed {
					t.Fatalf("connection %d: resumed %v, want %v", i+1, st.DidResume, wantResumed)
				}
				if first == nil {
					first = st.PeerCertificates[0].Raw
				} else if string(first) != string(st.PeerCertificates[0].Raw) {
					t.Fatal("the resumed connection reports another certificate")
				}
			}
		})
	}
}
