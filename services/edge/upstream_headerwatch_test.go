package edge

import (
	"context"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/segmesh/segmesh/pkg/config"
)

// TestResponseHeaderTimeout: on the proxy path an Exchange that does not
// answer within ResponseHeaderTimeout gets the device a 504 and its
// connection closed; one that answers in time is untouched, and a slow
// response body after prompt headers is not cut.
func TestResponseHeaderTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	for _, tt := range []struct {
		name       string
		handler    func(w http.ResponseWriter, release <-chan struct{})
		wantStatus int
		wantBody   string
		minTook    time.Duration
	}{
		{name: "no answer: 504", handler: func(_ http.ResponseWriter, release <-chan struct{}) { <-release },
			wantStatus: 504, minTook: timeout},
		{name: "answer within the timeout", handler: func(w http.ResponseWriter, _ <-chan struct{}) {
			<-time.After(timeout / 3)
			_, _ = w.Write([]byte("late but in time"))
		}, wantStatus: 200, wantBody: "late but in time"},
		{name: "headers at once, body after the timeout", handler: func(w http.ResponseWriter, _ <-chan struct{}) {
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			<-time.After(2 * timeout)
			_, _ = w.Write([]byte("slow body"))
		}, wantStatus: 200, wantBody: "slow body", minTook: 2 * timeout},
	} {
		t.Run(tt.name, func(t *testing.T) {
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
