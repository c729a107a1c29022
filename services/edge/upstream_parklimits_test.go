package edge

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// rawAnswer answers Exchange's side with raw bytes on the hijacked connection.
func rawAnswer(raw string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		_, _ = brw.WriteString(raw)
		_ = brw.Flush()
		_ = c.Close()
	}
}

// TestParkedPingAnswersLikeProxy: a 1xx from Exchange used to be delivered to
// the device as the parked Ping's whole answer (and the real answer lost),
// and the parked path read response headers of any size. Each case answers a
// parked Ping and, for comparison, a proxied Sync the same way, and expects
// the same statuses on both paths: informational answers relayed, then the
// final one; a header over the limit (each answer's own) gives 502.
func TestParkedPingAnswersLikeProxy(t *testing.T) {
	const limit = 4 << 10
	big := strings.Repeat("x", 2<<10)
	tests := []struct {
		name     string
		raw      string
		want     []int
		wantBody string
	}{
		{"102 then 103 then the answer", "HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>; rel=preload\r\n\r\n" +
			"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\npong", []int{102, 103, 200}, "pong"},
		{"100 Continue then the answer", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\npong", []int{100, 200}, "pong"},
		{"headers over the limit", "HTTP/1.1 200 OK\r\nX-A: " + big + "\r\nX-B: " + big + "\r\nX-C: " + big + "\r\nContent-Length: 4\r\n\r\npong", []int{502}, ""},
		{"each 1xx has a budget of its own", strings.Repeat("HTTP/1.1 103 Early Hints\r\nLink: "+big+"\r\n\r\n", 3) +
			"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\npong", []int{103, 103, 103, 200}, "pong"},
		{"a 1xx over the limit", "HTTP/1.1 103 Early Hints\r\nX-A: " + big + "\r\nX-B: " + big + "\r\nX-C: " + big + "\r\n\r\n" +
			"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\npong", []int{502}, ""},
		{"body over the limit is fine", fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", 3*len(big), big+big+big), []int{200}, big},
	}
	for _, tt := range tests {
		for _, path := range []string{pingPath, syncPath} {
			t.Run(tt.name+"/"+strings.SplitN(strings.SplitN(path, "Cmd=", 2)[1], "&", 2)[0], func(t *testing.T) {
				h := newHarness(t, nil, options{tune: func(c *Config) { c.MaxResponseHeaderBytes = limit }})
				answer := rawAnswer(tt.raw)
				h.exchange.handler = func(w http.ResponseWriter, r *http.Request, _ string) { answer(w) }
				cert := h.ca.issue(t, certOpts{cn: "alice", serial: 4242})
				d := h.device(t, &cert)
				d.send(path, "<Ping/>")
				var got []int
				for {
					resp, body, err := d.read()
					if err != nil {
						t.Fatalf("after %v: %v", got, err)
					}
					got = append(got, resp.StatusCode)
					if informational(resp.StatusCode) {
						continue
					}
					if !slices.Equal(got, tt.want) || !strings.HasPrefix(body, tt.wantBody) {
						t.Fatalf("statuses %v body %.20q, want %v %.20q", got, body, tt.want, tt.wantBody)
					}
					break
				}
			})
		}
	}
}
