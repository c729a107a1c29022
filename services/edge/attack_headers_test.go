package edge

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// TestAttackRequestTrailers: a device sends a chunked body whose trailer
// carries credentials and forwarding headers (Authorization,
// Proxy-Authorization, X-Forwarded-For, Forwarded). The header rule keeps
// them out of the header section; the trailer section is a second way in
// and must not reach Exchange at all, on the reverse proxy and on a Ping
// (EAS and EWS use no request trailers). Before the fix the values were
// dropped only by accident (http.Request.Clone copies the trailer map
// before the body is read) and the names still went to Exchange as a
// Trailer declaration. Attacker review of the request policy (policy.go).
func TestAttackRequestTrailers(t *testing.T) {
	trailers := []string{"Authorization", "Proxy-Authorization", "X-Forwarded-For", "Forwarded", "X-Custom"}
	for _, p := range policyPaths {
		t.Run(p.name, func(t *testing.T) {
			if p.parked && !pollSupported {
				t.Skip("no parking on this platform")
			}
			h := newHarness(t, nil, options{})
			var mu sync.Mutex
			var gotTrailer http.Header
			var gotBody string
			h.exchange.handler = func(w http.ResponseWriter, r *http.Request, user string) {
				b, _ := io.ReadAll(r.Body)
				mu.Lock()
				gotTrailer, gotBody = r.Trailer.Clone(), string(b)
				mu.Unlock()
				_, _ = fmt.Fprintf(w, "user=%s", user)
			}
			cert := h.ca.issue(t, certOpts{cn: "alice", serial: 4243})
			d := h.device(t, &cert)
			body := "<Request/>"
			if _, err := fmt.Fprintf(d.c, "POST %s HTTP/1.1\r\nHost: edge.lab.test\r\nContent-Type: application/vnd.ms-sync.wbxml\r\n"+
				"Transfer-Encoding: chunked\r\nTrailer: %s\r\n\r\n%x\r\n%s\r\n0\r\n"+
				"Authorization: Basic Ym9iOnNlY3JldA==\r\nProxy-Authorization: Basic eDp5\r\nX-Forwarded-For: 6.6.6.6\r\nForwarded: for=6.6.6.6\r\nX-Custom: 1\r\n\r\n",
				p.path, strings.Join(trailers, ", "), len(body), body); err != nil {
				t.Fatal(err)
			}
			resp, rbody, err := d.read()
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			if resp.StatusCode != http.StatusOK || !strings.HasPrefix(rbody, "user=alice") {
				t.Fatalf("%d %q; want the request served as alice", resp.StatusCode, rbody)
			}
			mu.Lock()
			defer mu.Unlock()
			if gotBody != body {
				t.Errorf("Exchange got body %q, want %q", gotBody, body)
			}
			for k, v := range gotTrailer {
				t.Errorf("Exchange got the device's trailer %s: %q", k, v)
			}
		})
	}
}

// TestAttackUpgradeTunnel: a device asks for a protocol upgrade
// (Connection: Upgrade, Upgrade: websocket). Were it passed on and
// answered 101 by the upstream, the device would hold a raw tunnel to
// Exchange on a connection Exchange has authenticated as the user, where
// the edge no longer re-checks revocation per request or limits the paths
// (EAS, EWS and Autodiscover never upgrade). A Ping asking for an
// upgrade is not parked (fallbackUpgrade) and takes the proxy path. Found
// by the attacker review (the device got 101 and reached /ecp/ through it);
// the edge now passes no upgrade (policy.go, removeHopByHop).
func TestAttackUpgradeTunnel(t *testing.T) {
	for _, p := range policyPaths {
		t.Run(p.name, func(t *testing.T) {
			if p.parked && !pollSupported {
				t.Skip("no parking on this platform")
			}
			h := newHarness(t, nil, options{})
			var mu sync.Mutex
			var upgrades []string
			h.exchange.handler = func(w http.ResponseWriter, r *http.Request, user string) {
				mu.Lock()
				upgrades = append(upgrades, r.Header.Get("Upgrade"))
				mu.Unlock()
				if r.Header.Get("Upgrade") == "" {
					_, _ = fmt.Fprintf(w, "user=%s", user)
					return
				}
				hj, ok := w.(http.Hijacker)
				if !ok {
					t.Error("no hijacker")
					return
				}
				c, brw, err := hj.Hijack()
				if err != nil {
					t.Error(err)
					return
				}
				defer c.Close()
				_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
				_ = brw.Flush()
				// Whatever the device sends through the tunnel is echoed: a
				// request for a path the edge never forwards.
				line, _ := brw.ReadString('\n')
				_, _ = brw.WriteString("tunnel:" + line)
				_ = brw.Flush()
			}
			cert := h.ca.issue(t, certOpts{cn: "alice", serial: 4244})
			d := h.device(t, &cert)
			d.sendWith(p.path, "Connection: Upgrade\r\nUpgrade: websocket\r\n", "")
			resp, body, err := d.read()
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			if resp.StatusCode == http.StatusSwitchingProtocols {
				_, _ = io.WriteString(d.c, "GET /ecp/ HTTP/1.1\r\n")
				got, _ := d.br.ReadString('\n')
				t.Fatalf("the edge opened a tunnel to Exchange (101); through it: %q", got)
			}
			mu.Lock()
			defer mu.Unlock()
			for _, u := range upgrades {
				if u != "" {
					t.Errorf("Exchange got Upgrade: %q (the device got %d %q)", u, resp.StatusCode, body)
				}
			}
		})
	}
}
