package edge

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/segmesh/segmesh/pkg/config"
)

// policyPath is one of the ways a request reaches Exchange.
type policyPath struct {
	name   string
	path   string // the request's URL
	parked bool   // whether the request must be parked
	relay  bool   // whether the request goes through the relay (segmesh.edge.http1Engine relay)
}

var policyPaths = []policyPath{
	{name: "reverse proxy (Sync)", path: syncPath},
	{name: "parked (Ping)", path: pingPath, parked: true},
	{name: "relay (Sync)", path: syncPath, relay: true},
}

// setUp returns the harness configuration of path p on top of mutate.
func (p policyPath) setUp(mutate func(*config.Config)) func(*config.Config) {
	return func(c *config.Config) {
		c.Segmesh.Edge.HTTP1Engine = "net/http"
		if p.relay {
			c.Segmesh.Edge.HTTP1Engine = "relay"
		}
		if mutate != nil {
			mutate(c)
		}
	}
}

// relayed returns how many requests h's relay sent to Exchange.
func relayed(h *harness) int64 {
	if h.edge.relay == nil {
		return 0
	}
	return h.edge.relay.sent.Load()
}

// policyCase is one rule of the request policy (policy.go), run through
// both paths.
type policyCase struct {
	name   string
	mutate func(*config.Config)
	// before runs after a first request on the device's connection was
	// served (its ticket and connection established).
	before func(t *testing.T, h *harness)
	// header is extra request header lines ("Name: value\r\n").
	header string
	// answer, when set, is Exchange's answer after authentication; seen
	// holds the request's headers as Exchange got them.
	answer func(w http.ResponseWriter)
	// check judges the device's answer; exchange is how many requests
	// Exchange got for it.
	check func(t *testing.T, h *harness, resp *http.Response, body string, seen http.Header, exchange int64)
}

// send writes a POST of body to path with extra header lines.
func (d *device) sendWith(path, header, body string) {
	d.t.Helper()
	if _, err := fmt.Fprintf(d.c, "POST %s HTTP/1.1\r\nHost: edge.lab.test\r\nContent-Type: application/vnd.ms-sync.wbxml\r\n%sContent-Length: %d\r\n\r\n%s", path, header, len(body), body); err != nil {
		d.t.Fatal(err)
	}
}

// TestRequestPolicyOnBothPaths runs each rule of the request policy through
// the reverse proxy and through a parked Ping: the rule is written once
// (policy.go), and both paths must show it.
func TestRequestPolicyOnBothPaths(t *testing.T) {
	cases := []policyCase{
		{name: "re-check: revoked since the connection opened: 403, Exchange not asked",
			before: func(t *testing.T, h *harness) {
				gen := h.edge.revocation.current()
				h.crl.revoke(h.ca, 4242)
				waitFor(t, "new snapshot", func() bool { return h.edge.revocation.current() > gen })
			},
			check: func(t *testing.T, h *harness, resp *http.Response, body string, _ http.Header, exchange int64) {
				if resp.StatusCode != http.StatusForbidden || exchange != 0 {
					t.Fatalf("%d %q, %d requests at Exchange; want 403 and none", resp.StatusCode, body, exchange)
				}
			}},
		{name: "authenticate: Exchange authenticates the certificate's user, with the cached ticket",
			check: func(t *testing.T, h *harness, resp *http.Response, body string, _ http.Header, exchange int64) {
				if resp.StatusCode != http.StatusOK || !strings.HasPrefix(body, "user=alice@") || exchange != 1 {
					t.Fatalf("%d %q, %d requests at Exchange; want alice served", resp.StatusCode, body, exchange)
				}
				if n := h.tickets.gets.Load(); n != 1 {
					t.Fatalf("%d tickets fetched for two requests, want 1 (the second from the cache)", n)
				}
			}},
		{name: "401: the ticket is invalidated, one retry with a new one, served",
			before: func(t *testing.T, h *harness) { h.exchange.reject401.Store(1) },
			check: func(t *testing.T, h *harness, resp *http.Response, body string, _ http.Header, exchange int64) {
				if resp.StatusCode != http.StatusOK || exchange != 2 || h.tickets.invalidates.Load() != 1 {
					t.Fatalf("%d %q, %d requests at Exchange, %d invalidations; want 200 after one retry", resp.StatusCode, body, exchange, h.tickets.invalidates.Load())
				}
			}},
		{name: "401 on the retry too: the 401 reaches the device, without WWW-Authenticate",
			before: func(t *testing.T, h *harness) { h.exchange.reject401.Store(2) },
			check: func(t *testing.T, h *harness, resp *http.Response, body string, _ http.Header, exchange int64) {
				if resp.StatusCode != http.StatusUnauthorized || exchange != 2 || resp.Header.Get("WWW-Authenticate") != "" {
					t.Fatalf("%d %v, %d requests at Exchange; want 401 without a challenge after one retry", resp.StatusCode, resp.Header, exchange)
				}
			}},
		{name: "failover: the first upstream refuses the connection, the next serves and becomes preferred",
			mutate: func(c *config.Config) {
				c.Segmesh.Edge.ExchangeURLs = append([]string{"http://127.0.0.1:1"}, c.Segmesh.Edge.ExchangeURLs...)
			},
			before: func(t *testing.T, h *harness) { h.edge.upstreams.route.Load().preferred.Store(0) },
			check: func(t *testing.T, h *harness, resp *http.Response, body string, _ http.Header, exchange int64) {
				if resp.StatusCode != http.StatusOK || exchange != 1 || h.edge.upstreams.route.Load().preferred.Load() != 1 {
					t.Fatalf("%d %q, %d requests, preferred %d; want served by the second", resp.StatusCode, body, exchange, h.edge.upstreams.route.Load().preferred.Load())
				}
			}},
		{name: "outbound headers: hop-by-hop, the device's credentials and X-Forwarded-* do not pass",
			header: "Connection: X-Hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\nTe: trailers\r\nProxy-Authorization: Basic eDp5\r\n" +
				"Authorization: Basic Ym9iOnNlY3JldA==\r\nX-Forwarded-For: 6.6.6.6\r\nForwarded: for=6.6.6.6\r\nX-Forwarded-Host: evil\r\nX-Forwarded-Proto: http\r\n",
			check: func(t *testing.T, h *harness, resp *http.Response, body string, seen http.Header, _ int64) {
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("%d %q", resp.StatusCode, body)
				}
				for _, k := range []string{"X-Hop", "Keep-Alive", "Proxy-Authorization", "Forwarded"} {
					if v, ok := seen[k]; ok {
						t.Errorf("Exchange got %s: %q", k, v)
					}
				}
				want := map[string]string{"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Host": "edge.lab.test", "X-Forwarded-Proto": "https", "Te": "trailers"}
				for k, v := range want {
					if got := strings.Join(seen.Values(k), ","); got != v {
						t.Errorf("Exchange got %s: %q, want %q", k, got, v)
					}
				}
				if a := seen.Values("Authorization"); len(a) != 1 || !strings.HasPrefix(a[0], "Negotiate ") {
					t.Errorf("Exchange got Authorization %q, want the edge's Negotiate only", a)
				}
			}},
		{name: "inbound headers: Server, Exchange's authentication and hop-by-hop headers do not reach the device",
			answer: func(w http.ResponseWriter) {
				h := w.Header()
				h.Set("Server", "Microsoft-IIS/10.0")
				h.Set("WWW-Authenticate", "Basic realm=\"mail\"")
				h.Set("Persistent-Auth", "true")
				h.Set("Connection", "X-Up")
				h.Set("X-Up", "1")
				h.Set("MS-Server-ActiveSync", "15.1")
				_, _ = w.Write([]byte("ok"))
			},
			check: func(t *testing.T, h *harness, resp *http.Response, body string, _ http.Header, _ int64) {
				if resp.StatusCode != http.StatusOK || body != "ok" || resp.Header.Get("MS-Server-ActiveSync") != "15.1" {
					t.Fatalf("%d %q %v", resp.StatusCode, body, resp.Header)
				}
				for _, k := range []string{"Server", "WWW-Authenticate", "Persistent-Auth", "X-Up"} {
					if v := resp.Header.Values(k); len(v) > 0 {
						t.Errorf("the device got %s: %q", k, v)
					}
				}
			}},
		{name: "error mapping: ticket role down at the 401 retry: 503 with Retry-After",
			before: func(t *testing.T, h *harness) {
				h.tickets.setUnavailable(true)
				h.exchange.reject401.Store(1)
			},
			check: func(t *testing.T, h *harness, resp *http.Response, body string, _ http.Header, _ int64) {
				if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || body != "Service Unavailable\n" {
					t.Fatalf("%d %q %v; want 503 with Retry-After and the status text only", resp.StatusCode, body, resp.Header)
				}
			}},
		{name: "access line: one line with status, user, command and the retry",
			before: func(t *testing.T, h *harness) { h.exchange.reject401.Store(1) },
			check: func(t *testing.T, h *harness, resp *http.Response, _ string, _ http.Header, _ int64) {
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("status %d", resp.StatusCode)
				}
				cmd := "cmd=Sync"
				if resp.Request != nil && strings.Contains(resp.Request.URL.RawQuery, "Ping") {
					cmd = "cmd=Ping"
				}
				waitFor(t, "the access line", func() bool { return accessLines(h, "retried_401=true") == 1 })
				line := grepLine(h.logs.String(), "retried_401=true")
				for _, want := range []string{cmd, "status=200", "upn=alice@lab.test", "ticket_cache_hit=", "device_id=", "remote=127.0.0.1"} {
					if !strings.Contains(line, want) {
						t.Errorf("access line %q lacks %q", line, want)
					}
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			onBothPaths(t, tc.mutate, func(t *testing.T, p policyPath, h *harness) { runPolicyCase(t, tc, p, h) })
		})
	}
}

// onBothPaths runs test once per policy path, each with a new harness
// (mutate applied); the parked path is skipped where there is no parking.
func onBothPaths(t *testing.T, mutate func(*config.Config), test func(t *testing.T, p policyPath, h *harness)) {
	for _, p := range policyPaths {
		t.Run(p.name, func(t *testing.T) {
			if p.parked && !pollSupported {
				t.Skip("no parking on this platform")
			}
			test(t, p, newHarness(t, p.setUp(mutate), options{}))
		})
	}
}

// gotRequest is a request as Exchange got it.
type gotRequest struct {
	path    string
	header  http.Header
	body    string
	trailer http.Header
}

// exchangeRecord holds the requests h's Exchange authenticated (record).
type exchangeRecord struct {
	mu   sync.Mutex
	reqs []gotRequest
}

// record makes h's Exchange keep each request it authenticates, body and
// trailer read, then answer through answer (nil: "user=<user>").
func record(h *harness, answer func(w http.ResponseWriter, r *http.Request, user string)) *exchangeRecord {
	rec := &exchangeRecord{}
	h.exchange.handler = func(w http.ResponseWriter, r *http.Request, user string) {
		b, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, gotRequest{path: r.URL.Path, header: r.Header.Clone(), body: string(b), trailer: r.Trailer.Clone()})
		rec.mu.Unlock()
		if answer != nil {
			answer(w, r, user)
			return
		}
		_, _ = fmt.Fprintf(w, "user=%s", user)
	}
	return rec
}

// got returns the requests recorded so far.
func (rec *exchangeRecord) got() []gotRequest {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return slices.Clone(rec.reqs)
}

func runPolicyCase(t *testing.T, tc policyCase, p policyPath, h *harness) {
	var answer func(w http.ResponseWriter, r *http.Request, user string)
	if tc.answer != nil {
		answer = func(w http.ResponseWriter, _ *http.Request, _ string) { tc.answer(w) }
	}
	rec := record(h, answer)
	cert := h.ca.issue(t, certOpts{cn: "alice", serial: 4242})
	d := h.device(t, &cert)
	d.sendWith(syncPath, "", "<Sync/>")
	if resp, body, err := d.read(); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("first request: %v %v %q", err, resp, body)
	}
	if tc.before != nil {
		tc.before(t, h)
	}
	parkedBefore := strings.Count(h.logs.String(), `msg="Ping parked"`)
	exchangeBefore, relayedBefore := h.exchange.requests.Load(), relayed(h)
	d.sendWith(p.path, tc.header, "<Request/>")
	resp, body, err := d.read()
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	resp.Request, _ = http.NewRequest(http.MethodPost, "https://edge.lab.test"+p.path, nil)
	var seen http.Header // the last request's
	if got := rec.got(); len(got) > 0 {
		seen = got[len(got)-1].header
	}
	tc.check(t, h, resp, body, seen, h.exchange.requests.Load()-exchangeBefore)
	if parked := strings.Count(h.logs.String(), `msg="Ping parked"`) > parkedBefore; parked != p.parked && h.exchange.requests.Load() > exchangeBefore {
		t.Fatalf("parked = %v, want %v", parked, p.parked)
	}
	if sent := relayed(h) - relayedBefore; (sent > 0) != p.relay && h.exchange.requests.Load() > exchangeBefore {
		t.Fatalf("%d requests sent by the relay, want some: %v", sent, p.relay)
	}
}

// accessLines counts the access-log lines holding s.
func accessLines(h *harness, s string) int {
	n := 0
	for _, l := range strings.Split(h.logs.String(), "\n") {
		if strings.Contains(l, "msg=request") && strings.Contains(l, s) {
			n++
		}
	}
	return n
}

// grepLine returns the first log line holding s.
func grepLine(text, s string) string {
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}

// TestUpstreamSwitchingProtocolsRefused: an upstream that answers 101
// Switching Protocols although the edge asked for no upgrade (it passes
// none, TestAttackUpgradeTunnel) opens no tunnel: on the reverse proxy and
// a parked Ping alike the device gets 502 (the 101 is never relayed).
func TestUpstreamSwitchingProtocolsRefused(t *testing.T) {
	onBothPaths(t, nil, func(t *testing.T, p policyPath, h *harness) {
		h.exchange.handler = func(w http.ResponseWriter, r *http.Request, _ string) {
			c, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer c.Close()
			_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: segmesh-test\r\n\r\n")
			_ = brw.Flush()
		}
		cert := h.ca.issue(t, certOpts{cn: "alice"})
		d := h.device(t, &cert)
		d.sendWith(p.path, "", "")
		resp, body, err := d.read()
		if err != nil {
			t.Fatalf("no answer: %v", err)
		}
		if resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("%s %q, want 502 for an unasked 101", resp.Status, body)
		}
	})
}

func TestKCDOffPassesAuthorizationThrough(t *testing.T) {
	h := newHarness(t, func(c *config.Config) { c.KCD = config.KCD{} }, options{})
	var got []string
	h.exchange.srv.Config.Handler = httpHandler(func(auth []string) { got = auth })
	cert := h.ca.issue(t, certOpts{cn: "alice"})
	resp, _ := get(t, h.client(&cert, false), h.url("/EWS/Exchange.asmx"), map[string]string{"Authorization": "Basic YTpi"})
	if resp.StatusCode != 200 || len(got) != 1 || got[0] != "Basic YTpi" {
		t.Fatalf("status %d Authorization %q: without KCD the device's credentials pass through", resp.StatusCode, got)
	}
	if h.idm.calls.Load() != 0 || h.tickets.gets.Load() != 0 {
		t.Fatal("identity or ticket called with KCD off")
	}
}

func TestNothingRequiredPassesThrough(t *testing.T) {
	h := newHarness(t, func(c *config.Config) {
		c.KCD, c.RequireClientCertificate, c.Gateway.RevocationEnabled = config.KCD{}, false, false
		c.ClientCertTrustStorePath = ""
	}, options{})
	var got []string
	h.exchange.srv.Config.Handler = httpHandler(func(auth []string) { got = auth })
	rogue := newCA(t, "Rogue CA").issue(t, certOpts{cn: "x"})
	for _, cert := range []*tls.Certificate{nil, &rogue} {
		resp, _ := get(t, h.client(cert, false), h.url("/EWS/Exchange.asmx"), map[string]string{"Authorization": "Basic YTpi"})
		if resp.StatusCode != 200 || len(got) != 1 || got[0] != "Basic YTpi" {
			t.Fatalf("cert=%v: status %d Authorization %q", cert != nil, resp.StatusCode, got)
		}
	}
}
