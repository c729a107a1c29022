package edge

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// The attacks in this file frame a request the way a hostile device would
// and judge what Exchange got, on the reverse proxy and on the Ping path
// (onBothPaths, record).

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
	onBothPaths(t, nil, func(t *testing.T, p policyPath, h *harness) {
		rec := record(h, nil)
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
		got := rec.got()
		if len(got) != 1 || got[0].body != body {
			t.Fatalf("Exchange got %+v, want one request with body %q", got, body)
		}
		for k, v := range got[0].trailer {
			t.Errorf("Exchange got the device's trailer %s: %q", k, v)
		}
	})
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
	onBothPaths(t, nil, func(t *testing.T, p policyPath, h *harness) {
		rec := record(h, func(w http.ResponseWriter, r *http.Request, user string) {
			if r.Header.Get("Upgrade") == "" {
				_, _ = fmt.Fprintf(w, "user=%s", user)
				return
			}
			c, brw, err := http.NewResponseController(w).Hijack()
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
		})
		cert := h.ca.issue(t, certOpts{cn: "alice", serial: 4244})
		d := h.device(t, &cert)
		d.sendWith(p.path, "Connection: Upgrade\r\nUpgrade: websocket\r\n", "")
		resp, body, err := d.read()
		if err != nil {
			t.Fatalf("no answer: %v", err)
		}
		if resp.StatusCode == http.StatusSwitchingProtocols {
			_, _ = fmt.Fprint(d.c, "GET /ecp/ HTTP/1.1\r\n")
			got, _ := d.br.ReadString('\n')
			t.Fatalf("the edge opened a tunnel to Exchange (101); through it: %q", got)
		}
		for _, r := range rec.got() {
			if u := r.header.Get("Upgrade"); u != "" {
				t.Errorf("Exchange got Upgrade: %q (the device got %d %q)", u, resp.StatusCode, body)
			}
		}
	})
}

// TestAttackRequestSmuggling: a device frames one request ambiguously
// (Content-Length with Transfer-Encoding, two lengths, obfuscated
// encodings) and hides a second request to a path the edge never forwards
// (/ecp/) in it. Whatever the edge answers, Exchange must see only
// requests to forwarded paths, each with a body the edge framed itself, on
// the reverse proxy and on the Ping path. Attacker review of the request
// policy; held.
func TestAttackRequestSmuggling(t *testing.T) {
	const hidden = "GET /ecp/ HTTP/1.1\r\nHost: mail.lab.test\r\n\r\n"
	framings := []struct{ name, header, body string }{
		{"CL and TE", "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n" + hidden},
		{"TE and CL", "Transfer-Encoding: chunked\r\nContent-Length: 48\r\n", "0\r\n\r\n" + hidden},
		{"two lengths", "Content-Length: 0\r\nContent-Length: 48\r\n", hidden},
		{"TE chunked, identity", "Transfer-Encoding: chunked, identity\r\nContent-Length: 5\r\n", "0\r\n\r\n" + hidden},
		{"TE with a space before the colon", "Transfer-Encoding : chunked\r\nContent-Length: 5\r\n", "0\r\n\r\n" + hidden},
		{"TE xchunked", "Transfer-Encoding: xchunked\r\nContent-Length: 5\r\n", "0\r\n\r\n" + hidden},
	}
	for _, f := range framings {
		t.Run(f.name, func(t *testing.T) {
			onBothPaths(t, nil, func(t *testing.T, p policyPath, h *harness) {
				rec := record(h, nil)
				cert := h.ca.issue(t, certOpts{cn: "alice", serial: 4245})
				d := h.device(t, &cert)
				// A last request that closes the connection: once the edge
				// has ended it, everything before it was handled (HTTP/1.1
				// answers in order), so no timer decides what was seen.
				last := "GET " + syncPath + " HTTP/1.1\r\nHost: edge.lab.test\r\nConnection: close\r\n\r\n"
				if _, err := fmt.Fprintf(d.c, "POST %s HTTP/1.1\r\nHost: edge.lab.test\r\n%s\r\n%s%s", p.path, f.header, f.body, last); err != nil {
					t.Fatal(err)
				}
				for {
					if _, _, err := d.read(); err != nil {
						break
					}
				}
				for _, r := range rec.got() {
					if !strings.HasPrefix(r.path, "/Microsoft-Server-ActiveSync") || strings.Contains(r.path+" "+r.body, "/ecp/") {
						t.Errorf("Exchange got %q %q", r.path, r.body)
					}
				}
			})
		})
	}
}
