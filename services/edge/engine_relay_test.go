package edge

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/segmesh/segmesh/pkg/config"
)

// rawExchange is an upstream whose answers the test writes byte for byte,
// to drive the relay's connection handling (engine_relay_pool.go) where
// a well-behaved server never goes.
type rawExchange struct {
	t     testing.TB
	ln    net.Listener
	conns chan net.Conn
}

func newRawExchange(t testing.TB) *rawExchange {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	x := &rawExchange{t: t, ln: ln, conns: make(chan net.Conn, 16)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			x.conns <- c
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		for {
			select {
			case c := <-x.conns:
				_ = c.Close()
			default:
				return
			}
		}
	})
	return x
}

// rawUpConn is one upstream connection the relay opened.
type rawUpConn struct {
	t  testing.TB
	c  net.Conn
	br *bufio.Reader
}

// accept returns the relay's next new connection.
func (x *rawExchange) accept() *rawUpConn {
	x.t.Helper()
	select {
	case c := <-x.conns:
		x.t.Cleanup(func() { _ = c.Close() })
		return &rawUpConn{t: x.t, c: c, br: bufio.NewReader(c)}
	case <-time.After(10 * time.Second):
		x.t.Fatal("the relay opened no new upstream connection")
		return nil
	}
}

// noNewConn fails when the relay opened another connection.
func (x *rawExchange) noNewConn() {
	x.t.Helper()
	select {
	case <-x.conns:
		x.t.Fatal("the relay opened a new upstream connection, want the kept one reused")
	default:
	}
}

// request reads one request with its body.
func (u *rawUpConn) request() *http.Request {
	u.t.Helper()
	_ = u.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	r, err := http.ReadRequest(u.br)
	if err != nil {
		u.t.Fatalf("upstream: read the request: %v", err)
	}
	_, _ = io.Copy(io.Discard, r.Body)
	return r
}

// write writes raw answer bytes.
func (u *rawUpConn) write(s string) {
	u.t.Helper()
	if _, err := io.WriteString(u.c, s); err != nil {
		u.t.Fatal(err)
	}
}

// okAnswer is a complete 200 with body b.
func okAnswer(b string) string {
	return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(b), b)
}

// relayHarness is an edge with the relay in front of a rawExchange.
func relayHarness(t *testing.T, o options) (*harness, *rawExchange, *device) {
	t.Helper()
	return engineHarness(t, "relay", o)
}

// engineHarness is an edge with engine (segmesh.edge.http1Engine) in front
// of a rawExchange, and alice's device.
func engineHarness(t *testing.T, engine string, o options) (*harness, *rawExchange, *device) {
	t.Helper()
	if !pollSupported {
		t.Skip("the relay needs pollReady (Linux)")
	}
	x := newRawExchange(t)
	h := newHarness(t, func(c *config.Config) {
		c.Segmesh.Edge.HTTP1Engine = engine
		c.Segmesh.Edge.ExchangeURLs = []string{"http://" + x.ln.Addr().String()}
	}, o)
	cert := h.ca.issue(t, certOpts{cn: "alice"})
	return h, x, h.device(t, &cert)
}

// TestRelayConnections: the relay keeps upstream connections and never
// lets bytes it did not ask for answer a later request.
func TestRelayConnections(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, h *harness, x *rawExchange, d *device)
	}{
		{"kept alive: the second request reuses the connection", func(t *testing.T, h *harness, x *rawExchange, d *device) {
			up := roundTrip(t, x, d, nil, "one")
			kept(t, h)
			roundTrip(t, x, d, up, "two")
			x.noNewConn()
		}},
		{"an answer nobody asked for, in the same read: the connection is dropped", func(t *testing.T, h *harness, x *rawExchange, d *device) {
			d.sendWith(syncPath, "", "<Sync/>")
			up := x.accept()
			up.request()
			up.write(okAnswer("one") + okAnswer("STOLEN"))
			expectBody(t, d, http.StatusOK, "one")
			roundTrip(t, x, d, nil, "two")
		}},
		{"an answer nobody asked for, while idle: the connection is dropped", func(t *testing.T, h *harness, x *rawExchange, d *device) {
			up := roundTrip(t, x, d, nil, "one")
			kept(t, h)
			up.write(okAnswer("STOLEN")) // on loopback, in the edge's socket when write returns
			roundTrip(t, x, d, nil, "two")
		}},
		{"Exchange closed the idle connection: a new one", func(t *testing.T, h *harness, x *rawExchange, d *device) {
			up := roundTrip(t, x, d, nil, "one")
			kept(t, h)
			_ = up.c.Close()
			roundTrip(t, x, d, nil, "two")
		}},
		{"Exchange closes after reading an idempotent request, before answering: sent again on a new connection with a new authenticator (a POST is not: TestAttackRelayResendsAfterExchangeReadTheRequest)", func(t *testing.T, h *harness, x *rawExchange, d *device) {
			up := roundTrip(t, x, d, nil, "one")
			if _, err := fmt.Fprintf(d.c, "GET %s HTTP/1.1\r\nHost: edge.lab.test\r\n\r\n", syncPath); err != nil {
				t.Fatal(err)
			}
			first := up.request().Header.Get("Authorization")
			_ = up.c.Close()
			up2 := x.accept()
			again := up2.request().Header.Get("Authorization")
			up2.write(okAnswer("two"))
			expectBody(t, d, http.StatusOK, "two")
			if !strings.HasPrefix(again, "Negotiate ") || again == first {
				t.Fatalf("the request was sent again with Authorization %.20q (first %.20q), want a new Negotiate header", again, first)
			}
		}},
		{"a chunked answer broken off: the device's connection is cut, not ended cleanly", func(t *testing.T, h *harness, x *rawExchange, d *device) {
			d.sendWith(syncPath, "", "<Sync/>")
			up := x.accept()
			up.request()
			up.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
			_ = up.c.Close()
			resp, body, err := d.read()
			if err == nil {
				t.Fatalf("the device got a complete answer %v %q from a broken-off one", resp, body)
			}
		}},
		{"informational answers reach the device before the final one", func(t *testing.T, h *harness, x *rawExchange, d *device) {
			d.sendWith(syncPath, "", "<Sync/>")
			up := x.accept()
			up.request()
			up.write("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + okAnswer("final"))
			resp, _, err := d.read()
			if err != nil || resp.StatusCode != http.StatusEarlyHints || resp.Header.Get("Link") != "</a>" {
				t.Fatalf("first answer %v %v, want the 103 with its Link", resp, err)
			}
			expectBody(t, d, http.StatusOK, "final")
		}},
		{"more than five informational answers: 502", func(t *testing.T, h *harness, x *rawExchange, d *device) {
			d.sendWith(syncPath, "", "<Sync/>")
			up := x.accept()
			up.request()
			up.write(strings.Repeat("HTTP/1.1 102 Processing\r\n\r\n", 7) + okAnswer("final"))
			for {
				resp, body, err := d.read()
				if err != nil {
					t.Fatalf("no final answer: %v", err)
				}
				if resp.StatusCode >= 200 {
					if resp.StatusCode != http.StatusBadGateway {
						t.Fatalf("%d %q, want 502", resp.StatusCode, body)
					}
					return
				}
			}
		}},
		{"the device hangs up during a held request: the upstream connection is closed", func(t *testing.T, h *harness, x *rawExchange, d *device) {
			d.sendWith(syncPath, "", "<Sync/>")
			up := x.accept()
			up.request()
			_ = d.c.Close()
			closedByEdge(t, up, "the device hung up")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, x, d := relayHarness(t, options{})
			tc.run(t, h, x, d)
		})
	}
}

// TestRelayResponseHeaderLimit: Exchange's header bytes are bounded by
// MaxResponseHeaderBytes on the relay as on the other paths: 502.
func TestRelayResponseHeaderLimit(t *testing.T) {
	h, x, d := relayHarness(t, options{tune: func(c *Config) { c.MaxResponseHeaderBytes = 1024 }})
	d.sendWith(syncPath, "", "<Sync/>")
	up := x.accept()
	up.request()
	up.write("HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("a", 2048) + "\r\nContent-Length: 2\r\n\r\nok")
	expectBody(t, d, http.StatusBadGateway, "Bad Gateway\n")
	waitFor(t, "the access line", func() bool { return strings.Contains(h.logs.String(), "exceed the limit") })
}

// expectBody reads the device's next answer and wants status and body.
func expectBody(t *testing.T, d *device, status int, body string) {
	t.Helper()
	resp, got, err := d.read()
	if err != nil || resp.StatusCode != status || got != body {
		t.Fatalf("answer %v %q %v, want %d %q", resp, got, err, status, body)
	}
}

// roundTrip sends a Sync from d, reads it on up (on the relay's next new
// connection when up is nil), answers body and wants the device to get it;
// it returns the connection.
func roundTrip(t *testing.T, x *rawExchange, d *device, up *rawUpConn, body string) *rawUpConn {
	t.Helper()
	d.sendWith(syncPath, "", "<Sync/>")
	if up == nil {
		up = x.accept()
	}
	up.request()
	up.write(okAnswer(body))
	expectBody(t, d, http.StatusOK, body)
	return up
}

// kept waits until h's relay keeps one idle connection to Exchange.
func kept(t *testing.T, h *harness) {
	t.Helper()
	waitFor(t, "the connection kept", func() bool { return h.edge.relay.idleCount(h.edge.upstreams.route.Load().urls[0]) == 1 })
}

// TestRelaySetting: segmesh.edge.http1Engine selects the engine (the
// relay when left out, net/http by name), the status page names it (and
// counts the relay's requests), and an unknown engine is refused with the
// key's name.
func TestRelaySetting(t *testing.T) {
	if !pollSupported {
		t.Skip("the relay needs pollReady (Linux)")
	}
	for _, tc := range []struct {
		engine, want string
		relayed      int64
	}{{"", "relay", 1}, {"net/http", "net/http", 0}, {"relay", "relay", 1}} {
		t.Run(tc.want+"/"+tc.engine, func(t *testing.T) {
			h := newHarness(t, func(c *config.Config) { c.Segmesh.Edge.HTTP1Engine = tc.engine }, options{})
			cert := h.ca.issue(t, certOpts{cn: "alice"})
			d := h.device(t, &cert)
			d.sendWith(syncPath, "", "<Sync/>")
			if resp, body, err := d.read(); err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("%v %v %q", err, resp, body)
			}
			st := h.edge.statusSection().(map[string]any)
			if st["http1_engine"] != tc.want {
				t.Fatalf("status http1_engine %v, want %s", st["http1_engine"], tc.want)
			}
			if got, _ := st["relay_requests"].(int64); got != tc.relayed {
				t.Fatalf("status relay_requests %v, want %d", st["relay_requests"], tc.relayed)
			}
		})
	}
	c := config.Default()
	c.Segmesh.Edge.HTTP1Engine = "fasthttp"
	c.Segmesh.Edge.ExchangeURLs = []string{"https://mail.lab.test"}
	if _, err := newConfig(&c); err == nil || !strings.Contains(err.Error(), "segmesh.edge.http1Engine") {
		t.Fatalf("newConfig with an unknown engine: %v, want the key named", err)
	}
}
