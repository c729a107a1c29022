//go:build lab

package edge_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/segmesh/segmesh/internal/labenv"
)

// TestLabParkedPing holds an HTTP/1.1 Ping (most EAS clients speak
// HTTP/1.1, and only HTTP/1.1 Pings are parked) at the Exchange stand-in,
// over HTTP and HTTPS upstreams, then sends a Sync on the same device
// connection: the parked Ping is answered with a Negotiate header Apache
// accepted, and the connection goes back to the edge's server.
func TestLabParkedPing(t *testing.T) {
	lab := labenv.Up(t)
	for _, https := range []bool{false, true} {
		t.Run(fmt.Sprintf("https=%v", https), func(t *testing.T) {
			sm := startSegmesh(t, lab, runOptions{config: func(cfg map[string]any) {
				sm := section(cfg, "segmesh")
				section(sm, "telemetry")["logLevel"] = "debug"
				if https {
					section(sm, "edge")["exchangeUrls"] = []string{lab.ExchangeHTTPSURL}
					section(sm, "edge")["exchangeCaFile"] = lab.ExchangeCA
				} else {
					section(sm, "edge")["exchangeUrls"] = []string{lab.ExchangeURL}
				}
			}})
			conn := dialTLS(t, lab, sm, "alice")
			br := bufio.NewReader(conn)
			roundTrip := func(cmd string, extra ...string) (int, map[string]any) {
				t.Helper()
				path := easURL("", cmd, "alice", "LABPARK1", extra...)
				body := "<" + cmd + "/>"
				if _, err := fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: seg.lab.test\r\nContent-Length: %d\r\n\r\n%s", path, len(body), body); err != nil {
					t.Fatal(err)
				}
				_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("%s: %v", cmd, err)
				}
				b, err := io.ReadAll(resp.Body)
				if err != nil {
					t.Fatalf("%s body: %v", cmd, err)
				}
				var e map[string]any
				if resp.StatusCode == 200 {
					if err := json.Unmarshal(b, &e); err != nil {
						t.Fatalf("%s: not the stand-in's JSON: %v: %s", cmd, err, b)
					}
				}
				return resp.StatusCode, e
			}
			if st, _ := roundTrip("Sync"); st != 200 {
				t.Fatalf("Sync: status %d", st)
			}
			start := time.Now()
			st, e := roundTrip("Ping", "hold=3")
			if user, _ := e["remote_user"].(string); st != 200 || e["held_seconds"] != 3.0 || !strings.HasPrefix(user, `alice\@lab.test`) || e["https"] != https {
				t.Fatalf("Ping: status %d echo %v", st, e)
			}
			if took := time.Since(start); took < 3*time.Second {
				t.Fatalf("Ping answered after %v, want held 3 s", took)
			}
			if !strings.Contains(sm.logs.String(), "Ping parked") {
				t.Fatal("the Ping was not parked")
			}
			// Apache (OpenSSL) sends TLS 1.3 session tickets after the
			// handshake: they wake the parked Ping, which must go back to
			// waiting instead of blocking in a read.
			if https && !strings.Contains(sm.logs.String(), "woke without an answer") {
				t.Fatal("the session tickets did not wake the parked Ping: the HTTPS wake path was not exercised")
			}
			if st, e := roundTrip("Sync"); st != 200 || e["body_length"] != 7.0 {
				t.Fatalf("Sync after the Ping on the same connection: status %d echo %v", st, e)
			}
		})
	}
}
