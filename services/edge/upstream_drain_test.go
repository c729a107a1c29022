package edge

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// easPingStatus1 is an EAS Ping response with Status 1 ("the heartbeat
// interval expired before any changes occurred", MS-ASCMD 2.2.3.177.11) in
// WBXML (MS-ASWBXML): header 03 01 6A 00, SWITCH_PAGE 0x0D (Ping), Ping with
// content, Status with content, STR_I "1", END, END. Written out here rather
// than taken from the code, so the test checks the bytes devices parse.
var easPingStatus1 = []byte{0x03, 0x01, 0x6a, 0x00, 0x00, 0x0d, 0x45, 0x47, 0x03, '1', 0x00, 0x01, 0x01}

// readDrainedPing reads d's next answer and fails the test unless it is
// the drain's Ping Status 1; what names the Ping in the failure.
func (d *device) readDrainedPing(what string) {
	d.t.Helper()
	resp, body, err := d.read()
	if err != nil {
		d.t.Fatalf("%s: no answer: %v", what, err)
	}
	if wrong := drainedPingOK(resp, body); wrong != "" {
		d.t.Fatalf("%s: %s", what, wrong)
	}
}

// heldPingPaths are the three ways a Ping is held at Exchange: parked, over
// HTTP/2 through the reverse proxy, and through the reverse proxy because
// it could not be parked.
var heldPingPaths = []struct {
	name string
	tune func(*Config)
	// h2 sends the Ping over HTTP/2; otherwise over a raw HTTP/1.1
	// connection.
	h2     bool
	parked bool
}{
	{name: "parked", parked: true},
	{name: "HTTP/2", h2: true},
	{name: "not parkable (body over ReplayMaxBytes)", tune: func(c *Config) { c.ReplayMaxBytes = 2 }},
}

// stopAsync starts Stop (with a 30 s deadline) and returns its result's
// channel once the edge reports not ready.
func (h *harness) stopAsync(t testing.TB) <-chan error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	stopped := make(chan error, 1)
	go func() { stopped <- h.edge.Stop(ctx) }()
	waitFor(t, "not ready", func() bool { return h.edge.Ready(context.Background()) != nil })
	return stopped
}

// heldExchange makes h's Exchange hold Pings until released, at the end of
// the test at the latest.
func (h *harness) heldExchange(t testing.TB) *held {
	hd := newHeld()
	t.Cleanup(hd.let)
	h.exchange.handler = hd.handler
	return hd
}

// pingAnswer is the answer a device got to a Ping.
type pingAnswer struct {
	resp *http.Response
	body string
	err  error
}

// sendPing sends a Ping with cert over HTTP/2 (h2) or a raw HTTP/1.1
// connection, and returns the channel its answer comes on.
func (h *harness) sendPing(t testing.TB, cert *tls.Certificate, h2 bool) <-chan pingAnswer {
	t.Helper()
	return h.sendHeld(t, cert, h2, pingPath, "<Ping/>")
}

// sendHeld is sendPing for any EAS POST (a Sync with a Wait).
func (h *harness) sendHeld(t testing.TB, cert *tls.Certificate, h2 bool, path, body string) <-chan pingAnswer {
	t.Helper()
	got := make(chan pingAnswer, 1)
	if h2 {
		c := h.client(cert, true)
		go func() {
			resp, err := c.Post(h.url(path), "application/vnd.ms-sync.wbxml", strings.NewReader(body))
			if err != nil {
				got <- pingAnswer{err: err}
				return
			}
			b, err := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			got <- pingAnswer{resp, string(b), err}
		}()
		return got
	}
	d := h.device(t, cert)
	d.send(path, body)
	go func() {
		resp, body, err := d.read()
		got <- pingAnswer{resp, body, err}
	}()
	return got
}

// drainedPingOK reports what is wrong with resp as the answer a stopping edge
// gives a held Ping; "" when it is right.
func drainedPingOK(resp *http.Response, body string) string {
	switch {
	case resp.StatusCode != http.StatusOK:
		return "status " + resp.Status
	case !bytes.Equal([]byte(body), easPingStatus1):
		return "body is not a WBXML Ping with Status 1"
	case resp.Header.Get("Content-Type") != "application/vnd.ms-sync.wbxml":
		return "Content-Type " + resp.Header.Get("Content-Type")
	case resp.ProtoMajor == 1 && !resp.Close && resp.Header.Get("Connection") != "close":
		return "no Connection: close"
	}
	return ""
}

// TestStopAnswersHeldPings: on Stop every Ping held at Exchange — parked,
// sent over HTTP/2, or proxied because it could not be parked — is answered
// at once with Ping Status 1 (and Connection: close on HTTP/1.1), while
// Exchange still holds it, and Stop then returns without waiting for the
// drain deadline.
func TestStopAnswersHeldPings(t *testing.T) {
	for _, tt := range heldPingPaths {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil, options{tune: tt.tune})
			hd := h.heldExchange(t)
			cert := h.ca.issue(t, certOpts{cn: "alice"})
			got := h.sendPing(t, &cert, tt.h2)
			waitFor(t, "Ping held at Exchange", func() bool { return hd.entered.Load() == 1 })
			if n, want := h.edge.parking.len(), map[bool]int{true: 1}[tt.parked]; n != want {
				t.Fatalf("%d parked Pings, want %d", n, want)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			stopped := make(chan error, 1)
			go func() { stopped <- h.edge.Stop(ctx) }()
			a := <-got
			if a.err != nil {
				t.Fatalf("the held Ping got no answer: %v", a.err)
			}
			if tt.h2 && a.resp.ProtoMajor != 2 {
				t.Fatalf("answered over %s, want HTTP/2", a.resp.Proto)
			}
			if what := drainedPingOK(a.resp, a.body); what != "" {
				t.Fatalf("answer to the held Ping: %s (%q)", what, a.body)
			}
			if err := <-stopped; err != nil {
				t.Fatalf("Stop: %v", err)
			}
			if ctx.Err() != nil {
				t.Fatal("Stop waited for the drain deadline")
			}
			waitFor(t, "Exchange saw the Ping cancelled", func() bool { return hd.cancelled.Load() == 1 })
			if n := h.edge.parking.len(); n != 0 {
				t.Fatalf("%d parked Pings after Stop", n)
			}
		})
	}
}

// TestStopGrace: during DrainGrace the edge is not ready but still accepts
// new connections and serves them; a Ping that arrives then is held at
// Exchange and answered with Status 1 when the grace ends; after it the
// listener is closed.
func TestStopGrace(t *testing.T) {
	graceEnd := make(chan time.Time)
	h := newHarness(t, nil, options{
		tune:  func(c *Config) { c.DrainGrace = time.Hour },
		after: func(d time.Duration) <-chan time.Time { return graceEnd },
	})
	hd := h.heldExchange(t)
	cert := h.ca.issue(t, certOpts{cn: "alice"})
	stopped := h.stopAsync(t)

	// A new connection during the grace is served.
	if resp, body := get(t, h.client(&cert, false), h.url(syncPath), nil); resp.StatusCode != 200 {
		t.Fatalf("Sync on a new connection during the grace: %d %q", resp.StatusCode, body)
	}
	// A Ping that arrives during the grace is held until its end.
	d := h.device(t, &cert)
	d.send(pingPath, "<Ping/>")
	waitFor(t, "Ping held during the grace", func() bool { return hd.entered.Load() == 1 })
	close(graceEnd)
	d.readDrainedPing("Ping held during the grace")
	if err := <-stopped; err != nil {
		t.Fatalf("Stop: %v", err)
	}
	// After the grace: no new connections. Asked once Stop has returned:
	// the held Ping is answered before the listener closes, so a dial right
	// after its answer could still be accepted (and, left open, held the
	// server's Shutdown for its 5 s of StateNew).
	if c, err := tls.Dial("tcp", h.edge.Addr().String(), &tls.Config{RootCAs: h.serverPool(), ServerName: "edge.lab.test",
		Certificates: []tls.Certificate{cert}}); err == nil {
		_ = c.Close()
		t.Error("a new connection was accepted after the grace")
	}
	if n := hd.entered.Load(); n != 1 {
		t.Errorf("Exchange saw %d Pings, want 1 (the one held during the grace)", n)
	}
}

// serverPool returns a pool with the edge's server CA.
func (h *harness) serverPool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(h.serverCA.cert)
	return pool
}

// TestPingAnsweredAtOnceAfterGrace: once the grace is over a Ping that still
// reaches the handler (on a connection the server had already read it from)
// is answered with Status 1 without going to Exchange; other commands, and
// Pings before that point, are not.
func TestPingAnsweredAtOnceAfterGrace(t *testing.T) {
	h := newHarness(t, nil, options{})
	ping := &requestState{eas: EASRequest{Cmd: "ping"}}
	sync := &requestState{eas: EASRequest{Cmd: "Sync"}}
	check := func(when string, x *requestState, want bool) {
		t.Helper()
		rec := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPost, syncPath, strings.NewReader("<Sync/>"))
		if got := h.edge.answerHeldAtOnce(rec, r, x); got != want {
			t.Fatalf("%s, %s: answered at once = %v, want %v", when, x.eas.Cmd, got, want)
		}
		if want {
			if what := drainedPingOK(rec.Result(), rec.Body.String()); what != "" {
				t.Fatalf("%s: %s", when, what)
			}
		}
	}
	check("serving", ping, false)
	if err := h.edge.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	check("stopped", ping, true)
	check("stopped", sync, false)
}
