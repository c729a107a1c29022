package edge

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"testing"

	"github.com/segmesh/segmesh/pkg/config"
)

// sharedTicketExchanges starts n HTTPS Exchange stand-ins on 127.0.0.1
// (one name, several ports), each with its own certificate from one CA,
// all sharing one session ticket key: a session one issued resumes on
// every other if the client offers it. It returns their URLs and the CA's
// PEM.
func sharedTicketExchanges(t testing.TB, n int) ([]*url.URL, []byte) {
	t.Helper()
	ca := newCA(t, "Exchange CA")
	var key [32]byte
	copy(key[:], "one ticket key for every server")
	var urls []*url.URL
	for range n {
		cert := ca.issue(t, certOpts{cn: "127.0.0.1", eku: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			ips: []net.IP{net.IPv4(127, 0, 0, 1)}})
		srv := httptest.NewUnstartedServer(http.NotFoundHandler())
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		srv.TLS.SetSessionTicketKeys([][32]byte{key})
		srv.StartTLS()
		t.Cleanup(srv.Close)
		u, err := url.Parse(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		urls = append(urls, u)
	}
	return urls, ca.pem
}

// upstreamDialPath is one way the edge dials an HTTPS Exchange.
type upstreamDialPath struct {
	name string
	dial func(t testing.TB, s *Service, u *url.URL) net.Conn
}

var upstreamDialPaths = []upstreamDialPath{
	{"transport and relay (DialTLSContext)", func(t testing.TB, s *Service, u *url.URL) net.Conn {
		t.Helper()
		d := s.upstreams.transport.DialTLSContext
		if d == nil {
			t.Fatal("the transport has no DialTLSContext: it dials HTTPS upstreams itself")
		}
		addr := u.Host
		if u.Port() == "" {
			addr = net.JoinHostPort(u.Hostname(), "443") // as the transport gives it
		}
		c, err := d(context.Background(), "tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}},
	{"parked Ping (dialUpstream)", func(t testing.TB, s *Service, u *url.URL) net.Conn {
		t.Helper()
		c, err := s.dialUpstream(context.Background(), u)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}},
}

// connState returns the TLS state of an upstream connection.
func connState(t testing.TB, c net.Conn) tls.ConnectionState {
	t.Helper()
	tc, ok := unwatched(c).(*tls.Conn)
	if !ok {
		t.Fatalf("%T is not a TLS connection", unwatched(c))
	}
	return tc.ConnectionState()
}

// exchangeOnce sends a request on c and reads the answer: a TLS 1.3
// server's session ticket comes after the handshake and is taken in on the
// client's first read.
func exchangeOnce(t testing.TB, c net.Conn, host string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "https://"+host+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Close = true
	if err := req.Write(c); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
}

// TestUpstreamSessionsPerHost: a second connection to an HTTPS Exchange
// resumes the first one's TLS session, on every dial path (the transport
// and the relay, a parked Ping), with and without the header watch; a
// session is never offered to another Exchange server, even one behind the
// same name on another port that would accept it (crypto/tls keys its
// cache by ServerName alone: the other server resumed the first one's
// session, and the connection reported the first server's certificate, from
// which the channel binding is computed). Failed on main.
func TestUpstreamSessionsPerHost(t *testing.T) {
	urls, caPEM := sharedTicketExchanges(t, 2)
	for _, watch := range []bool{true, false} {
		for _, p := range upstreamDialPaths {
			t.Run(p.name+map[bool]string{true: ", header watch", false: ", no header watch"}[watch], func(t *testing.T) {
				h := newHarness(t, func(c *config.Config) {
					c.Segmesh.Edge.ExchangeURLs = []string{urls[0].String(), urls[1].String()}
					c.Segmesh.Edge.ExchangeCAFile = writeFile(t, t.TempDir(), "exchange-ca.pem", caPEM)
				}, options{tune: func(c *Config) {
					if !watch {
						c.ResponseHeaderTimeout = 0
					}
				}})
				var leaves [][]byte
				for i, want := range []struct {
					host    int
					resumed bool
					why     string
				}{
					{0, false, "first connection to server 1"},
					{0, true, "second connection to server 1 resumes"},
					{1, false, "server 2, same name, other port: not offered server 1's session"},
					{1, true, "second connection to server 2 resumes its own session"},
					{0, true, "server 1's session is still there"},
				} {
					c := p.dial(t, h.edge, urls[want.host])
					exchangeOnce(t, c, urls[want.host].Host)
					st := connState(t, c)
					_ = c.Close()
					if st.DidResume != want.resumed {
						t.Fatalf("connection %d (%s): resumed %v", i+1, want.why, st.DidResume)
					}
					leaves = append(leaves, st.PeerCertificates[0].Raw)
				}
				// The certificate each connection reports is its own server's.
				if !slices.Equal(leaves[0], leaves[1]) || !slices.Equal(leaves[2], leaves[3]) || slices.Equal(leaves[0], leaves[2]) {
					t.Fatal("a connection reports another server's certificate")
				}
			})
		}
	}
}

// TestUpstreamTrustTakesARestart: the TLS sessions with Exchange are kept
// for the life of the process, which is sound only because the trust they
// were verified with (segmesh.edge.exchangeCaFile) changes only with a
// restart: crypto/tls does not verify a resumed session's certificate
// again. If the setting ever becomes live, the reload must replace the
// session caches with the trust, and this test says so.
func TestUpstreamTrustTakesARestart(t *testing.T) {
	h := newHarness(t, nil, options{})
	if slices.Contains(h.edge.LiveKeys(), "segmesh.edge.exchangeCaFile") {
		t.Fatal("segmesh.edge.exchangeCaFile is live: a reload must then drop the upstream TLS sessions verified with the old trust (upstream_sessions.go)")
	}
}
