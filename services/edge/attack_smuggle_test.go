package edge

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

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
	for _, p := range policyPaths {
		for _, f := range framings {
			t.Run(p.name+"/"+f.name, func(t *testing.T) {
				if p.parked && !pollSupported {
					t.Skip("no parking on this platform")
				}
				h := newHarness(t, nil, options{})
				var mu sync.Mutex
				var seen []string
				h.exchange.handler = func(w http.ResponseWriter, r *http.Request, user string) {
					b, _ := io.ReadAll(r.Body)
					mu.Lock()
					seen = append(seen, r.URL.Path+" "+string(b))
					mu.Unlock()
					_, _ = fmt.Fprintf(w, "user=%s", user)
				}
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
					_ = d.c.SetReadDeadline(time.Now().Add(30 * time.Second))
					resp, err := http.ReadResponse(d.br, nil)
					if err != nil {
						break
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
				}
				mu.Lock()
				defer mu.Unlock()
				for _, s := range seen {
					if !strings.HasPrefix(s, "/Microsoft-Server-ActiveSync") || strings.Contains(s, "/ecp/") {
						t.Errorf("Exchange got %q", s)
					}
				}
			})
		}
	}
}
