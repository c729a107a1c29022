package edge

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/framingtest"
)

// framingEngine is one of the edge's HTTP/1.1 engines under the
// differential framing test (issue 25): mutate selects it in the
// configuration. An engine added to the edge adds its row here.
type framingEngine struct {
	name   string
	mutate func(*config.Config)
}

var framingEngines = []framingEngine{
	{name: "net/http", mutate: func(c *config.Config) { c.Segmesh.Edge.HTTP1Engine = "net/http" }},
	{name: "relay", mutate: func(c *config.Config) { c.Segmesh.Edge.HTTP1Engine = "relay" }},
}

// framingEdge starts an edge with its mTLS door, KCD on and the given
// engine, in front of a raw-TCP capture Exchange; dial opens a device
// connection (alice's certificate) from a given loopback address.
func framingEdge(tb testing.TB, e framingEngine) (*framingtest.Capture, framingtest.Dial) {
	tb.Helper()
	if err := framingtest.Supported(); err != nil {
		tb.Skip(err)
	}
	capture, err := framingtest.NewCapture()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = capture.Close() })
	h := newHarness(tb, func(c *config.Config) {
		c.Segmesh.Edge.ExchangeURLs = []string{capture.URL()}
		if e.mutate != nil {
			e.mutate(c)
		}
	}, options{})
	cert := h.ca.issue(tb, certOpts{cn: "alice", serial: 2525})
	pool := x509.NewCertPool()
	pool.AddCert(h.serverCA.cert)
	tc := &tls.Config{RootCAs: pool, ServerName: "edge.lab.test", Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}}
	addr := h.edge.Addr().String()
	dial := func(local net.IP) (net.Conn, error) {
		d := &tls.Dialer{NetDialer: &net.Dialer{LocalAddr: &net.TCPAddr{IP: local}}, Config: tc}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return d.DialContext(ctx, "tcp", addr)
	}
	return capture, dial
}

// runFraming runs one device input through the engine and fails on what
// reached Exchange against net/http's reading of it.
func runFraming(t *testing.T, capture *framingtest.Capture, dial framingtest.Dial, raw []byte) framingtest.Result {
	t.Helper()
	res, err := capture.Run(dial, raw)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range res.Findings {
		t.Error(f)
	}
	if res.Held {
		t.Errorf("the engine held the connection open after net/http would have ended it (%v, %v)", res.End, res.Refusal)
	}
	return res
}

// TestFramingSeeds runs the seed corpus through each engine: nothing net/http
// refuses reaches Exchange, what reaches it is what net/http read, and the
// well-formed request after each input (the sentinel) still reaches
// Exchange whenever net/http reads it whole: the engine kept in step. Not
// after a parked Ping: the edge closes a connection that sent more bytes
// behind a Ping once the Ping is answered (upstream_park.go, closeDevice),
// and a device sends them again on a new one.
func TestFramingSeeds(t *testing.T) {
	for _, e := range framingEngines {
		t.Run(e.name, func(t *testing.T) {
			capture, dial := framingEdge(t, e)
			reached := 0
			for _, s := range framingtest.Seeds() {
				t.Run(s.Name, func(t *testing.T) {
					res := runFraming(t, capture, dial, framingtest.WithSentinel([]byte(s.Raw)))
					if res.SentinelAccepted() && !res.SentinelReached() && !strings.Contains(s.Raw, framingtest.Ping) {
						t.Errorf("net/http read the sentinel after %q whole, but it did not reach Exchange (reached: %v)", s.Raw, res.Reached)
					}
					reached += len(res.Reached)
				})
			}
			if reached == 0 {
				t.Error("no request of the seed corpus reached Exchange: the test saw nothing")
			}
		})
	}
}

// FuzzFraming is the differential framing fuzz test (issue 25): each
// input goes through every engine, seeded with the corpus.
func FuzzFraming(f *testing.F) {
	for _, s := range framingtest.Seeds() {
		f.Add([]byte(s.Raw))
	}
	type started struct {
		name    string
		capture *framingtest.Capture
		dial    framingtest.Dial
	}
	var engines []started
	for _, e := range framingEngines {
		capture, dial := framingEdge(f, e)
		engines = append(engines, started{e.name, capture, dial})
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if len(raw) > 16<<10 {
			return // the header limit is not what this test is about
		}
		for _, e := range engines {
			t.Run(e.name, func(t *testing.T) {
				runFraming(t, e.capture, e.dial, framingtest.WithSentinel(raw))
			})
		}
	})
}
