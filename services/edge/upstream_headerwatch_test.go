package edge

import (
	"context"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/telemetry"
)

// Exchange's time to answer: the header watch that cuts a hung Exchange
// (upstream_headerwatch.go), what may be sent again after a cut, and the
// histogram of the wait (segmesh_edge_upstream_seconds).

// TestResponseHeaderTimeout: on the proxy path an Exchange that does not
// answer within ResponseHeaderTimeout gets the device a 504 and its
// connection closed; one that answers in time is untouched, and a slow
// response body after prompt headers is not cut.
//
// Each case has its own timeout: short where nothing races it (no answer),
// long where the answer must come before it: a loaded -race run may take
// more than 200 ms to bring an answer from the handler to the edge (with a
// 300 ms timeout and the answer after 100 ms, the answer in time got a 504
// once in 15 runs, GOMAXPROCS=1 on a loaded machine).
func TestResponseHeaderTimeout(t *testing.T) {
	for _, tt := range []struct {
		name       string
		timeout    time.Duration
		handler    func(w http.ResponseWriter, release <-chan struct{})
		wantStatus int
		wantBody   string
		minTook    time.Duration
	}{
		{name: "no answer: 504", timeout: 300 * time.Millisecond, handler: func(_ http.ResponseWriter, release <-chan struct{}) { <-release },
			wantStatus: 504, minTook: 300 * time.Millisecond},
		{name: "answer within the timeout", timeout: 10 * time.Second, handler: func(w http.ResponseWriter, _ <-chan struct{}) {
			<-time.After(300 * time.Millisecond) // late, but long before the timeout
			_, _ = w.Write([]byte("late but in time"))
		}, wantStatus: 200, wantBody: "late but in time"},
		{name: "headers at once, body after the timeout", timeout: time.Second, handler: func(w http.ResponseWriter, _ <-chan struct{}) {
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			<-time.After(2 * time.Second) // twice the timeout
			_, _ = w.Write([]byte("slow body"))
		}, wantStatus: 200, wantBody: "slow body", minTook: 2 * time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			timeout := tt.timeout
			h := newHarness(t, nil, options{tune: func(c *Config) { c.ResponseHeaderTimeout = timeout }})
			release := make(chan struct{})
			t.Cleanup(func() { close(release) })
			h.exchange.handler = func(w http.ResponseWriter, r *http.Request, _ string) {
				if strings.Contains(r.URL.RawQuery, "Cmd=Sync") {
					tt.handler(w, release)
					return
				}
				_, _ = w.Write([]byte("ok"))
			}
			cert := h.ca.issue(t, certOpts{cn: "alice"})
			c := h.client(&cert, false)
			start := time.Now()
			// POST, as EAS commands are: GETs take the transport with
			// http.Transport's own timer (TestResponseHeaderTimeoutNoRetry).
			resp, body := post(t, c, h.url(syncPath))
			took := time.Since(start)
			if resp.StatusCode != tt.wantStatus || (tt.wantBody != "" && body != tt.wantBody) {
				t.Fatalf("status %d body %q, want %d %q", resp.StatusCode, body, tt.wantStatus, tt.wantBody)
			}
			if took < tt.minTook || took > timeout+5*time.Second {
				t.Fatalf("answered after %v, want between %v and the timeout plus a few ticks", took, tt.minTook)
			}
			if tt.wantStatus == 504 {
				if !strings.Contains(h.logs.String(), "status=504") {
					t.Fatalf("no 504 in the access log:\n%s", h.logs.String())
				}
				waitFor(t, "timed-out upstream connection closed", func() bool { return h.edge.upstreams.watch.len() == 0 })
			}
			// The edge still serves.
			if resp, body := get(t, c, h.url("/Microsoft-Server-ActiveSync?Cmd=FolderSync&User=alice&DeviceId=D1&DeviceType=iPhone"), nil); resp.StatusCode != 200 || body != "ok" {
				t.Fatalf("next request: %d %q", resp.StatusCode, body)
			}
		})
	}
}

// TestHeaderWatchSweep: the sweep ends only the reads of connections whose
// written request has waited longer than the timeout, with an error that
// maps to 504.
func TestHeaderWatchSweep(t *testing.T) {
	w := newHeaderWatch(time.Hour)
	conn := func() *watchedConn {
		a, b := net.Pipe()
		t.Cleanup(func() { _ = a.Close(); _ = b.Close() })
		c := &watchedConn{Conn: a, w: w}
		w.conns[c] = struct{}{}
		return c
	}
	idle, waiting, answered := conn(), conn(), conn()
	now := w.since()
	waiting.sent.Store(now - int64(2*time.Hour))
	answered.sent.Store(now - int64(time.Minute))
	if n := w.sweep(); n != 1 || !waiting.timedOut.Load() || idle.timedOut.Load() || answered.timedOut.Load() {
		t.Fatalf("swept %d; timed out: idle %v, waiting %v, answered %v", n, idle.timedOut.Load(), waiting.timedOut.Load(), answered.timedOut.Load())
	}
	_, err := waiting.Read(make([]byte, 1))
	if !errors.Is(err, context.DeadlineExceeded) || failureOf(err, 0).Status != http.StatusGatewayTimeout {
		t.Fatalf("read after the sweep: %v", err)
	}
	if err := waiting.Close(); err != nil || w.len() != 2 {
		t.Fatalf("close: %v, %d watched, want 2", err, w.len())
	}
}

// TestResponseHeaderTimeoutHTTPS: behind TLS the wait is watched on the
// decrypted stream. The edge offers session resumption, and a TLS 1.3
// server that requests client certificates (Go's; OpenSSL's always) then
// sends its session tickets after the client's Finished, i.e. after the
// first request is written; watched on the TCP connection, those bytes
// ended the wait, and a hung Exchange held the first request of every new
// connection for ever (this test failed so).
func TestResponseHeaderTimeoutHTTPS(t *testing.T) {
	const timeout = 300 * time.Millisecond
	release := make(chan struct{})
	backend := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.RawQuery, "Cmd=Sync") {
			<-release
			return
		}
		_, _ = w.Write([]byte("ok"))
	}))
	backend.TLS = &tls.Config{ClientAuth: tls.RequestClientCert, MinVersion: tls.VersionTLS13}
	backend.StartTLS()
	t.Cleanup(backend.Close)
	// Cleanups run last first: release the held handler before Close waits for it.
	t.Cleanup(func() { close(release) })
	h := newHarness(t, func(c *config.Config) {
		c.Segmesh.Edge.ExchangeURLs = []string{backend.URL}
		c.Segmesh.Edge.ExchangeCAFile = writeFile(t, t.TempDir(), "exchange-ca.pem",
			pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: backend.Certificate().Raw}))
	}, options{tune: func(c *Config) { c.ResponseHeaderTimeout = timeout }})
	cert := h.ca.issue(t, certOpts{cn: "alice"})
	c := h.client(&cert, false)
	done := sendAsync(t, c, http.MethodPost, h.url(syncPath), "sync", map[string]string{"Content-Type": "application/vnd.ms-sync.wbxml"})
	select {
	case r := <-done:
		if r.err != nil || r.status != http.StatusGatewayTimeout {
			t.Fatalf("status %d (%v), want 504", r.status, r.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the first request on a new HTTPS upstream connection was never timed out")
	}
	// The edge still serves over HTTPS.
	if resp, body := get(t, c, h.url("/Microsoft-Server-ActiveSync?Cmd=FolderSync&User=alice&DeviceId=D1&DeviceType=iPhone"), nil); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("next request: %d %q", resp.StatusCode, body)
	}
}

// TestResponseHeaderTimeoutNoRetry: a GET (which http.Transport may replay)
// that times out on a reused upstream connection is not sent to Exchange a
// second time. The header watch ends the wait with a read error, which the
// transport takes for a keep-alive race and replays idempotent requests on;
// each replay waited the whole timeout again.
func TestResponseHeaderTimeoutNoRetry(t *testing.T) {
	const timeout = 300 * time.Millisecond
	h := newHarness(t, nil, options{tune: func(c *Config) { c.ResponseHeaderTimeout = timeout }})
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	var syncs atomic.Int32
	h.exchange.handler = func(w http.ResponseWriter, r *http.Request, _ string) {
		if strings.Contains(r.URL.RawQuery, "Cmd=Sync") {
			syncs.Add(1)
			<-release
			return
		}
		_, _ = w.Write([]byte("ok"))
	}
	cert := h.ca.issue(t, certOpts{cn: "alice"})
	c := h.client(&cert, false)
	// An answered request leaves an idle upstream connection: the next one reuses it.
	if resp, body := get(t, c, h.url("/Microsoft-Server-ActiveSync?Cmd=FolderSync&User=alice&DeviceId=D1&DeviceType=iPhone"), nil); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("first request: %d %q", resp.StatusCode, body)
	}
	start := time.Now()
	resp, _ := get(t, c, h.url(syncPath), nil)
	took := time.Since(start)
	if n := syncs.Load(); resp.StatusCode != http.StatusGatewayTimeout || n != 1 {
		t.Fatalf("status %d after %v, Exchange got the GET %d times; want 504 and once", resp.StatusCode, took, n)
	}
	// GETs are not watched; POSTs, every EAS command, are.
	if n := h.edge.upstreams.watch.len(); n != 0 {
		t.Fatalf("%d watched upstream connections after GETs only, want 0", n)
	}
	if resp, body := post(t, c, h.url("/Microsoft-Server-ActiveSync?Cmd=FolderSync&User=alice&DeviceId=D1&DeviceType=iPhone")); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("POST: %d %q", resp.StatusCode, body)
	}
	if n := h.edge.upstreams.watch.len(); n != 1 {
		t.Fatalf("%d watched upstream connections after a POST, want 1", n)
	}
}

// post sends a small EAS-like POST and returns the response and its body.
func post(t testing.TB, c *http.Client, url string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Post(url, "application/vnd.ms-sync.wbxml", strings.NewReader("body"))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestUpstreamDuration: every request but a Ping records Exchange's time to
// answer in segmesh_edge_upstream_seconds; a Ping proxied over HTTP/2 (it
// waits for mail, not for Exchange) records nothing.
func TestUpstreamDuration(t *testing.T) {
	const delay = 30 * time.Millisecond
	for _, tc := range []struct {
		name      string
		path      string
		wantCount uint64
	}{
		{"Sync", syncPath, 1},
		{"Ping over HTTP/2", pingPath, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil, options{})
			reader := recordMetrics(t, h)
			h.exchange.handler = func(w http.ResponseWriter, r *http.Request, _ string) {
				if !strings.Contains(r.URL.RawQuery, "Cmd=Ping") {
					time.Sleep(delay)
				}
				_, _ = w.Write([]byte("ok"))
			}
			cert := h.ca.issue(t, certOpts{cn: "alice"})
			if resp, body := get(t, h.client(&cert, true), h.url(tc.path), nil); resp.StatusCode != http.StatusOK {
				t.Fatalf("%s: HTTP %d %s", tc.name, resp.StatusCode, body)
			}
			count, sum := collectHistogram(t, reader, telemetry.MetricEdgeUpstreamDuration)
			if count != tc.wantCount {
				t.Fatalf("%d upstream durations recorded, want %d", count, tc.wantCount)
			}
			if count > 0 && sum < delay.Seconds() {
				t.Errorf("upstream duration %.3f s, want at least Exchange's %s", sum, delay)
			}
		})
	}
}

// collectHistogram returns the count and sum of the float histogram name
// over all its points.
func collectHistogram(t testing.TB, reader *sdkmetric.ManualReader, name string) (uint64, float64) {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var count uint64
	var sum float64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if h, ok := m.Data.(metricdata.Histogram[float64]); ok && m.Name == name {
				for _, dp := range h.DataPoints {
					count += dp.Count
					sum += dp.Sum
				}
			}
		}
	}
	return count, sum
}
