package testenv

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/segmesh/segmesh/internal/testpoll"
)

// TestSIGTERMWithGrace stops the edge with segmesh.edge.drainGraceSeconds
// set, in both shapes: the Ping held at SIGTERM is answered with Ping
// Status 1 when the grace ends, and a device connection accepted during the
// grace whose Ping comes only after the listener closed (phones reconnecting
// by the thousand queue their handshakes) is answered too, not closed
// unanswered (bench/drain.sh saw 2,827 such EOFs).
func TestSIGTERMWithGrace(t *testing.T) {
	status1 := string([]byte{0x03, 0x01, 0x6a, 0x00, 0x00, 0x0d, 0x45, 0x47, 0x03, '1', 0x00, 0x01, 0x01})
	for _, mode := range Modes {
		t.Run(string(mode), func(t *testing.T) {
			e := StartWith(t, mode, func(cfg map[string]any) {
				cfg["segmesh"].(map[string]any)["edge"].(map[string]any)["drainGraceSeconds"] = 2
			})
			alice := e.Device("alice", "alice@test.realm")
			c := e.Client(alice)
			if code, body := post(c, e.easURL("Sync", "alice", "ALICE1")); code != http.StatusOK {
				t.Fatalf("before SIGTERM: %d %q", code, body)
			}
			before := e.Exchange.Started()
			held := make(chan string, 1)
			go func() {
				code, body := post(c, e.easURL("Ping", "alice", "ALICE2", "hold", "60000"))
				held <- fmt.Sprintf("%d %q", code, body)
			}()
			if !testpoll.Within(5*time.Second, func() bool { return e.Exchange.Started() >= before+1 }) {
				t.Fatal("the Ping never reached Exchange")
			}
			u, err := url.Parse(e.EdgeURL("/"))
			if err != nil {
				t.Fatal(err)
			}
			tc := c.Transport.(*http.Transport).TLSClientConfig.Clone()
			tc.NextProtos = []string{"http/1.1"}

			stopped := e.StopEdgeAsync()
			conn, err := tls.Dial("tcp", u.Host, tc) // accepted before the listener closes
			if err != nil {
				t.Fatalf("connect during the grace: %v", err)
			}
			defer conn.Close()
			if !testpoll.Within(10*time.Second, func() bool {
				d, err := net.DialTimeout("tcp", u.Host, time.Second)
				if err == nil {
					_ = d.Close()
				}
				return err != nil
			}) {
				t.Fatal("the listener did not close after the grace")
			}
			req, err := http.NewRequest(http.MethodPost, e.easURL("Ping", "alice", "ALICE3", "hold", "60000"), nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/vnd.ms-sync.wbxml")
			if err := req.Write(conn); err != nil {
				t.Fatal(err)
			}
			_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(conn), req)
			if err != nil {
				t.Fatalf("Ping sent after the listener closed, on a connection accepted before: no answer: %v", err)
			}
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK || string(b) != status1 {
				t.Fatalf("Ping sent after the listener closed: %d %q, want 200 and Ping Status 1", resp.StatusCode, b)
			}
			if got, want := <-held, fmt.Sprintf("200 %q", status1); got != want {
				t.Fatalf("Ping held at SIGTERM: %s, want %s", got, want)
			}
			if err := <-stopped; err != nil {
				t.Fatalf("drain: %v", err)
			}
		})
	}
}
