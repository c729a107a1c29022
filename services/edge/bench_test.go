package edge

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/telemetry"
)

// easBody is a small EAS POST (a Sync request in WBXML is a few hundred bytes).
var easBody = strings.Repeat("\x03\x01j\x00E\\OK", 25)

func benchBackend(b *testing.B) *httptest.Server {
	b.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/vnd.ms-sync.wbxml")
		_, _ = w.Write([]byte("\x03\x01j\x00\x00\x00E\\OK\x01"))
	}))
	b.Cleanup(srv.Close)
	return srv
}

func benchClient(b *testing.B, h *harness, cert tls.Certificate, conns int) *http.Client {
	c := h.client(&cert, false)
	c.Transport.(*http.Transport).MaxIdleConnsPerHost = conns
	return c
}

// runRequests sends small EAS POSTs from parallel keep-alive clients and
// reports, beside wall time per request, the process CPU time per request
// (device, proxy and backend together, the same for every variant) and the
// 99th percentile latency.
func runRequests(b *testing.B, c *http.Client, url string) {
	var mu sync.Mutex
	var lat []time.Duration
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		mine := make([]time.Duration, 0, 1024)
		defer func() { mu.Lock(); lat = append(lat, mine...); mu.Unlock() }()
		for pb.Next() {
			t0 := time.Now()
			resp, err := c.Post(url, "application/vnd.ms-sync.wbxml", strings.NewReader(easBody))
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
			mine = append(mine, time.Since(t0))
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
	if len(lat) > 0 {
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	}
}

// BenchmarkProxyHotPath is a keep-alive mTLS EAS POST through the edge with
// the user's identity and ticket cached (no RPC), to a local backend.
// negotiator=pkg/negotiate is the token builder in use; negotiator=stub
// leaves it out, to show the rest of the edge's cost; engine=relay is the
// first with segmesh.edge.http1Engine "relay" (engine_relay.go).
func BenchmarkProxyHotPath(b *testing.B) {
	for _, tc := range []struct {
		name   string
		neg    negotiatorFactory
		engine string
	}{{"negotiator=pkg/negotiate", nil, "net/http"}, {"negotiator=stub", fakeFactory, "net/http"}, {"engine=relay", nil, "relay"}} {
		b.Run(tc.name, func(b *testing.B) {
			backend := benchBackend(b)
			h := newHarness(b, func(c *config.Config) {
				c.Segmesh.Edge.ExchangeURLs = []string{backend.URL}
				c.Segmesh.Edge.HTTP1Engine = tc.engine
			}, options{negotiator: tc.neg})
			log, err := telemetry.NewLogger(io.Discard, "info", "text") // format the access log, as in production
			if err != nil {
				b.Fatal(err)
			}
			h.edge.log = log.With("role", "edge")
			cert := h.ca.issue(b, certOpts{cn: "alice"})
			c := benchClient(b, h, cert, 64)
			url := h.url("/Microsoft-Server-ActiveSync?Cmd=Sync&User=alice&DeviceId=DEV1&DeviceType=iPhone")
			resp, err := c.Get(url) // warm identity and ticket caches
			if err != nil || resp.StatusCode != 200 {
				b.Fatalf("warm-up: %v %v", err, resp)
			}
			resp.Body.Close()
			runRequests(b, c, url)
		})
	}
}

// BenchmarkBareReverseProxy is the yardstick: a tuned httputil.ReverseProxy
// with the same mutual-TLS settings in front of the same backend.
func BenchmarkBareReverseProxy(b *testing.B) {
	backend := benchBackend(b)
	h := &harness{t: b, ca: newCA(b, "Device CA"), serverCA: newCA(b, "Server CA")}
	srvCert := h.serverCA.issue(b, certOpts{cn: "edge.lab.test", eku: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, dns: []string{"edge.lab.test"}})
	target, _ := url.Parse(backend.URL)
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.SetXForwarded()
			pr.Out.Header.Del("Authorization")
			pr.Out.Header.Set("Authorization", "Negotiate x")
		},
		Transport:     &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 512, DisableCompression: true},
		FlushInterval: 0, // as the edge: streamed responses are flushed per write regardless
		BufferPool:    &bufferPool{},
	}
	pool := x509.NewCertPool()
	pool.AddCert(h.ca.cert)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: rp, TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{srvCert},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	b.Cleanup(func() { _ = srv.Close() })
	h.edge = &Service{ln: ln}
	cert := h.ca.issue(b, certOpts{cn: "alice"})
	c := benchClient(b, h, cert, 64)
	runRequests(b, c, h.url("/Microsoft-Server-ActiveSync?Cmd=Sync"))
}
