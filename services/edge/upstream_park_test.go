package edge

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/segmesh/segmesh/pkg/config"
)

const pingPath = "/Microsoft-Server-ActiveSync?Cmd=Ping&User=alice&DeviceId=PARK1&DeviceType=iPhone"

// device is a raw HTTP/1.1 client on one TLS connection, so tests control
// when it hangs up and see which connection answers.
type device struct {
	t  testing.TB
	c  *tls.Conn
	br *bufio.Reader
}

func (h *harness) device(t testing.TB, cert *tls.Certificate) *device {
	t.Helper()
	d, err := h.dialDevice(t, cert)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// dialDevice is device returning the dial's error.
func (h *harness) dialDevice(t testing.TB, cert *tls.Certificate) (*device, error) {
	pool := x509.NewCertPool()
	pool.AddCert(h.serverCA.cert)
	c, err := tls.Dial("tcp", h.edge.Addr().String(), &tls.Config{RootCAs: pool, ServerName: "edge.lab.test",
		Certificates: []tls.Certificate{*cert}, NextProtos: []string{"http/1.1"}})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = c.Close() })
	return &device{t: t, c: c, br: bufio.NewReader(c)}, nil
}

// send writes a POST of body to path.
func (d *device) send(path, body string) {
	d.t.Helper()
	if _, err := fmt.Fprintf(d.c, "POST %s HTTP/1.1\r\nHost: edge.lab.test\r\nContent-Type: application/vnd.ms-sync.wbxml\r\nContent-Length: %d\r\n\r\n%s", path, len(body), body); err != nil {
		d.t.Fatal(err)
	}
}

// read returns the next response and its body; err when the connection ended.
func (d *device) read() (*http.Response, string, error) {
	_ = d.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(d.br, nil)
	if err != nil {
		return nil, "", err
	}
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

// held is an Exchange handler that holds each request until released or
// until the edge goes away, and records what it saw.
type held struct {
	release   chan struct{}
	once      sync.Once
	entered   atomic.Int64
	cancelled atomic.Int64
	answer    func(w http.ResponseWriter)
}

func newHeld() *held { return &held{release: make(chan struct{})} }

func (hd *held) handler(w http.ResponseWriter, r *http.Request, _ string) {
	b, _ := io.ReadAll(r.Body)
	if r.URL.Query().Get("Cmd") != "Ping" {
		_, _ = fmt.Fprintf(w, "%s body=%d", r.URL.Query().Get("Cmd"), len(b))
		return
	}
	hd.entered.Add(1)
	select {
	case <-hd.release:
	case <-r.Context().Done():
		hd.cancelled.Add(1)
		return
	}
	if hd.answer != nil {
		hd.answer(w)
		return
	}
	w.Header().Set("Content-Type", "application/vnd.ms-sync.wbxml")
	_, _ = w.Write([]byte("pong for " + r.URL.Query().Get("DeviceId")))
}

func (hd *held) let() { hd.once.Do(func() { close(hd.release) }) }

// warm sends one Sync on a connection of its own and closes it, so that the
// gRPC and upstream connections exist, and returns the goroutine count.
func (h *harness) warm(t testing.TB, cert *tls.Certificate) int {
	t.Helper()
	d := h.device(t, cert)
	d.send(syncPath, "<Sync/>")
	if resp, body, err := d.read(); err != nil || resp.StatusCode != 200 {
		t.Fatalf("warm-up Sync: %v %v %q", err, resp, body)
	}
	_ = d.c.Close()
	waitFor(t, "warm-up connection closed", func() bool {
		n := 0
		h.edge.peers.m.Range(func(any, any) bool { n++; return true })
		return n == 0
	})
	return runtime.NumGoroutine()
}

// goroutinesBack waits until the goroutine count falls to base (plus a
// little for the test's own idle connections).
func goroutinesBack(t testing.TB, base int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base+2 {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("goroutines: %d, baseline %d\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestParkedPing(t *testing.T) {
	tests := []struct {
		name string
		// answer is Exchange's answer once released; nil: 200 "pong for PARK1".
		answer func(w http.ResponseWriter)
		// during runs while the Ping is parked.
		during     func(t *testing.T, h *harness, d *device, hd *held)
		reject401  int64
		tune       func(*Config)
		wantStatus int    // 0: the connection ends without an answer
		wantBody   string // prefix
		wantLog    string
		// next reports whether the device connection serves a next request.
		next bool
	}{
		{name: "answered, then the next request on the same connection", wantStatus: 200, wantBody: "pong for PARK1",
			wantLog: "status=200", next: true},
		{name: "chunked answer", answer: func(w http.ResponseWriter) {
			_, _ = w.Write([]byte("part one "))
			w.(http.Flusher).Flush()
			_, _ = w.Write([]byte("part two"))
		}, wantStatus: 200, wantBody: "part one part two", next: true},
		{name: "EAS status passes through", answer: func(w http.ResponseWriter) {
			w.Header().Set("X-MS-ASError", "x")
			w.WriteHeader(449)
		}, wantStatus: 449, next: true},
		{name: "401 invalidates and retries once", reject401: 1, wantStatus: 200, wantBody: "pong for PARK1",
			wantLog: "retried_401=true", next: true},
		{name: "device hangs up mid-hold: upstream request cancelled", during: func(t *testing.T, h *harness, d *device, hd *held) {
			_ = d.c.Close()
			waitFor(t, "upstream request cancelled", func() bool { return hd.cancelled.Load() == 1 })
		}, wantLog: "status=499"},
		{name: "upstream closes: 502", answer: func(w http.ResponseWriter) {
			c, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				_ = c.Close()
			}
		}, wantStatus: 502, wantLog: "status=502", next: true},
		{name: "no answer within ResponseHeaderTimeout: 504", tune: func(c *Config) { c.ResponseHeaderTimeout = 200 * time.Millisecond },
			during: func(t *testing.T, h *harness, d *device, hd *held) {
				waitFor(t, "upstream request cancelled", func() bool { return hd.cancelled.Load() == 1 })
			}, wantStatus: 504, wantLog: "status=504", next: true},
		{name: "no ResponseHeaderTimeout (0): waits for the answer", tune: func(c *Config) { c.ResponseHeaderTimeout = 0 },
			wantStatus: 200, wantBody: "pong for PARK1", next: true},
		{name: "revoked mid-hold: no answer delivered", during: func(t *testing.T, h *harness, d *device, hd *held) {
			h.crl.revoke(h.ca, 4242)
			waitFor(t, "new snapshot", func() bool { return h.edge.revocation.current() > 1 })
		}, wantStatus: 403, wantLog: "status=403"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil, options{tune: tt.tune})
			hd := newHeld()
			hd.answer = tt.answer
			t.Cleanup(hd.let)
			h.exchange.handler = hd.handler
			cert := h.ca.issue(t, certOpts{cn: "alice", serial: 4242})
			base := h.warm(t, &cert)
			h.exchange.reject401.Store(tt.reject401)
			d := h.device(t, &cert)
			d.send(pingPath, "<Ping/>")
			waitFor(t, "Ping parked", func() bool { return h.edge.parking.len() == 1 && hd.entered.Load() == 1 })
			if tt.during != nil {
				tt.during(t, h, d, hd)
			}
			hd.let()
			if tt.wantStatus == 0 {
				waitFor(t, "parked Ping ended", func() bool { return h.edge.parking.len() == 0 })
			} else {
				resp, body, err := d.read()
				if err != nil {
					t.Fatalf("read the Ping's answer: %v", err)
				}
				if resp.StatusCode != tt.wantStatus || !strings.HasPrefix(body, tt.wantBody) {
					t.Fatalf("status %d body %q, want %d %q", resp.StatusCode, body, tt.wantStatus, tt.wantBody)
				}
				if tt.next {
					d.send(syncPath, "<Sync/>")
					resp, body, err := d.read()
					if err != nil || resp.StatusCode != 200 || body != "Sync body=7" {
						t.Fatalf("next request on the same connection: %v %v %q", err, resp, body)
					}
				} else if _, _, err := d.read(); err == nil {
					t.Fatal("connection still serving after the refusal")
				}
			}
			// The warm-up Sync, the Ping (and its retry), the next Sync.
			if got, want := h.exchange.requests.Load(), 3+tt.reject401; tt.next && got != want {
				t.Fatalf("Exchange saw %d requests, want %d", got, want)
			}
			if tt.wantLog != "" {
				logged := func() bool {
					for _, l := range strings.Split(h.logs.String(), "\n") {
						if strings.Contains(l, "msg=request") && strings.Contains(l, "cmd=Ping") && strings.Contains(l, tt.wantLog) {
							return true
						}
					}
					return false
				}
				for deadline := time.Now().Add(5 * time.Second); !logged(); time.Sleep(5 * time.Millisecond) {
					if time.Now().After(deadline) {
						t.Fatalf("no access-log line for the Ping with %s in\n%s", tt.wantLog, h.logs)
					}
				}
			}
			_ = d.c.Close()
			waitFor(t, "no parked Ping", func() bool { return h.edge.parking.len() == 0 })
			goroutinesBack(t, base)
		})
	}
}

// TestParkedPingDrain stops the edge with Pings parked: one answered within
// the drain (with Connection: close), one closed at the drain deadline.
// TestParkedPingHTTPSUpstream parks Pings in front of an HTTPS Exchange.
// Go's TLS server sends its session tickets with the handshake, so they do
// not wake the waiter here; OpenSSL's arrive later (TestLabParkedPing).
func TestParkedPingHTTPSUpstream(t *testing.T) {
	var fx *fakeExchange
	hd := newHeld()
	t.Cleanup(hd.let)
	// Whether the last Ping came on a resumed TLS session (the proxy path
	// shares the session cache, so the first Ping may resume the warm-up's).
	var pingResumed atomic.Bool
	tlsSrv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.RawQuery, "Cmd=Ping") {
			pingResumed.Store(r.TLS != nil && r.TLS.DidResume)
		}
		fx.serve(w, r)
	}))
	tlsSrv.StartTLS()
	t.Cleanup(tlsSrv.Close)
	h := newHarness(t, func(c *config.Config) {
		c.Segmesh.Edge.ExchangeURLs = []string{tlsSrv.URL}
		c.Segmesh.Edge.ExchangeCAFile = writeFile(t, t.TempDir(), "exchange-ca.pem",
			pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsSrv.Certificate().Raw}))
	}, options{})
	fx = h.exchange
	fx.handler = hd.handler
	cert := h.ca.issue(t, certOpts{cn: "alice"})
	base := h.warm(t, &cert)
	d := h.device(t, &cert)
	d.send(pingPath, "<Ping/>")
	waitFor(t, "Ping parked", func() bool { return h.edge.parking.len() == 1 && hd.entered.Load() == 1 })
	hd.let()
	resp, body, err := d.read()
	if err != nil || resp.StatusCode != 200 || body != "pong for PARK1" {
		t.Fatalf("%v %v %q", err, resp, body)
	}
	// The next Ping dials again and resumes the TLS session.
	d.send(pingPath, "<Ping/>")
	resp, body, err = d.read()
	if err != nil || resp.StatusCode != 200 || body != "pong for PARK1" || !pingResumed.Load() {
		t.Fatalf("second Ping: %v %v %q, resumed %v", err, resp, body, pingResumed.Load())
	}
	_ = d.c.Close()
	waitFor(t, "no parked Ping", func() bool { return h.edge.parking.len() == 0 })
	goroutinesBack(t, base)
}

// TestNotParked: other commands, HTTP/2 and bodies that cannot be kept go
// through the reverse proxy.
func TestNotParked(t *testing.T) {
	h := newHarness(t, nil, options{})
	var parkedSeen atomic.Bool
	h.exchange.handler = func(w http.ResponseWriter, r *http.Request, _ string) {
		if h.edge.parking.len() > 0 {
			parkedSeen.Store(true)
		}
		_, _ = w.Write([]byte("ok"))
	}
	cert := h.ca.issue(t, certOpts{cn: "alice"})
	for _, tt := range []struct {
		name string
		c    *http.Client
		path string
	}{
		{"Sync", h.client(&cert, false), syncPath},
		{"Ping over HTTP/2", h.client(&cert, true), pingPath},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := get(t, tt.c, h.url(tt.path), nil)
			if resp.StatusCode != 200 || body != "ok" || parkedSeen.Load() {
				t.Fatalf("status %d body %q parked %v", resp.StatusCode, body, parkedSeen.Load())
			}
		})
	}
}

var _ net.Listener = (*parkListener)(nil)

// TestParkedPingIdleAfterAnswer: after the answer the device connection
// waits for the next request as long as IdleTimeout allows, not only
// ReadHeaderTimeout, and Stop closes it at once while it waits.
//
// net/http bounds the server's TLS handshake, and every header read, by
// ReadHeaderTimeout too: it is 1 s, not less, so that a loaded -race run
// still meets it, and the first connection is tried again if its handshake
// missed it anyway (setup, not what is tested). IdleTimeout is far beyond
// any wait of the test, so that a Stop that waited for the idle connection
// would run into its context's deadline and fail.
func TestParkedPingIdleAfterAnswer(t *testing.T) {
	const readHeader = time.Second
	h := newHarness(t, nil, options{tune: func(c *Config) {
		c.ReadHeaderTimeout = readHeader
		c.IdleTimeout = time.Hour
	}})
	hd := newHeld()
	h.exchange.handler = hd.handler
	hd.let()
	cert := h.ca.issue(t, certOpts{cn: "alice"})
	var d *device
	for deadline := time.Now().Add(20 * time.Second); ; {
		var resp *http.Response
		var body string
		var err error
		d, err = h.dialDevice(t, &cert)
		if err == nil {
			d.send(pingPath, "<Ping/>")
			if resp, body, err = d.read(); err == nil && resp.StatusCode == 200 && body == "pong for PARK1" {
				break
			}
			_ = d.c.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("Ping: %v %v %q", err, resp, body)
		}
	}
	time.Sleep(2 * readHeader) // the device idles past ReadHeaderTimeout
	d.send(syncPath, "<Sync/>")
	if resp, body, err := d.read(); err != nil || resp.StatusCode != 200 || body != "Sync body=7" {
		t.Fatalf("Sync after idling: %v %v %q", err, resp, body)
	}

	// Answered again, then idle: Stop does not wait for it.
	d.send(pingPath, "<Ping/>")
	if resp, _, err := d.read(); err != nil || resp.StatusCode != 200 {
		t.Fatalf("second Ping: %v %v", err, resp)
	}
	waitFor(t, "connection idle after the answer", func() bool {
		_, answered := h.edge.parking.counts()
		return answered == 1
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.edge.Stop(ctx); err != nil {
		t.Fatalf("Stop with only an idle connection: %v (it waited for the connection)", err)
	}
	if _, _, err := d.read(); err == nil {
		t.Fatal("idle connection still open after Stop")
	}
}

// collectInts returns every int64 sum and gauge point of reader as
// "name/attribute value" → value.
func collectInts(t testing.TB, reader *sdkmetric.ManualReader) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	add := func(name string, dps []metricdata.DataPoint[int64]) {
		for _, dp := range dps {
			for _, kv := range dp.Attributes.ToSlice() {
				got[name+"/"+kv.Value.String()] += dp.Value
			}
		}
	}
	for _, sm := range rm.ScopeMetrics {
		for _, mt := range sm.Metrics {
			switch d := mt.Data.(type) {
			case metricdata.Sum[int64]:
				add(mt.Name, d.DataPoints)
			case metricdata.Gauge[int64]:
				add(mt.Name, d.DataPoints)
			}
		}
	}
	return got
}

// recordMetrics gives h's edge recording metrics and returns their reader.
func recordMetrics(t testing.TB, h *harness) *sdkmetric.ManualReader {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	m, err := newMetrics(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)).Meter("segmesh/edge"), h.edge.parking.counts)
	if err != nil {
		t.Fatal(err)
	}
	h.edge.metrics = m
	return reader
}

// TestParkedPingsObservable: the parked Pings are a gauge and a count on
// the status page, and Pings that could not be parked are counted by reason.
func TestParkedPingsObservable(t *testing.T) {
	t.Run("held, answered, HTTP/2", func(t *testing.T) {
		h := newHarness(t, nil, options{tune: func(c *Config) { c.IdleTimeout = 10 * time.Second }})
		reader := recordMetrics(t, h)
		hd := h.heldExchange(t)
		cert := h.ca.issue(t, certOpts{cn: "alice"})
		d := h.device(t, &cert)
		d.send(pingPath, "<Ping/>")
		waitFor(t, "Ping parked", func() bool { return h.edge.parking.len() == 1 && hd.entered.Load() == 1 })
		got := collectInts(t, reader)
		if got["segmesh_edge_parked_pings/held"] != 1 || got["segmesh_edge_parked_pings/answered"] != 0 {
			t.Fatalf("while held: %v", got)
		}
		st := h.edge.statusSection().(map[string]any)
		if st["parked_pings"] != 1 || st["parked_pings_answered"] != 0 {
			t.Fatalf("status while held: parked_pings %v, answered %v", st["parked_pings"], st["parked_pings_answered"])
		}
		hd.let()
		if resp, _, err := d.read(); err != nil || resp.StatusCode != 200 {
			t.Fatalf("Ping: %v %v", err, resp)
		}
		waitFor(t, "answered Ping counted", func() bool {
			got = collectInts(t, reader)
			return got["segmesh_edge_parked_pings/held"] == 0 && got["segmesh_edge_parked_pings/answered"] == 1
		})

		// HTTP/2 cannot be hijacked: proxied and counted.
		resp, _ := get(t, h.client(&cert, true), h.url(pingPath), nil)
		if resp.StatusCode != 200 {
			t.Fatalf("Ping over HTTP/2: %d", resp.StatusCode)
		}
		got = collectInts(t, reader)
		if got["segmesh_edge_ping_fallbacks/not_http1"] != 1 || got["segmesh_edge_ping_fallbacks/dial"] != 0 {
			t.Fatalf("fallbacks: %v", got)
		}
		st = h.edge.statusSection().(map[string]any)
		if fb := st["ping_fallbacks"].(map[string]int64); fb["not_http1"] != 1 {
			t.Fatalf("status ping_fallbacks %v", fb)
		}
	})
	t.Run("upstream down", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		down := "http://" + ln.Addr().String()
		_ = ln.Close()
		h := newHarness(t, func(c *config.Config) { c.Segmesh.Edge.ExchangeURLs = []string{down} }, options{})
		reader := recordMetrics(t, h)
		cert := h.ca.issue(t, certOpts{cn: "alice"})
		d := h.device(t, &cert)
		d.send(pingPath, "<Ping/>")
		if resp, _, err := d.read(); err != nil || resp.StatusCode < 500 {
			t.Fatalf("Ping to a closed port: %v %v", err, resp)
		}
		if got := collectInts(t, reader); got["segmesh_edge_ping_fallbacks/dial"] != 1 || got["segmesh_edge_parked_pings/held"] != 0 {
			t.Fatalf("metrics: %v", got)
		}
	})
}
