package testenv

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/segmesh/segmesh/internal/testpoll"
)

// easURL is an ActiveSync request URL for cmd from user's device.
func (e *Env) easURL(cmd, user, device string, extra ...string) string {
	q := url.Values{"Cmd": {cmd}, "User": {user}, "DeviceId": {device}, "DeviceType": {"TestPhone"}}
	for i := 0; i+1 < len(extra); i += 2 {
		q.Set(extra[i], extra[i+1])
	}
	return e.EdgeURL("/Microsoft-Server-ActiveSync?" + q.Encode())
}

// post sends an EAS command and returns the status and body; a transport
// error (a refused handshake) is status 0 with the error as body.
func post(c *http.Client, u string) (int, string) {
	resp, err := c.Post(u, "application/vnd.ms-sync.wbxml", strings.NewReader("<Sync/>"))
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// grepLines returns the lines of text that contain s.
func grepLines(text, s string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestEndToEnd runs the request path's cases through the real roles, in
// both shapes, against the wire-speaking fakes. The cases share one site
// per mode and use their own users; the ones that break the site (KDC
// down, SIGTERM) run last.
func TestEndToEnd(t *testing.T) {
	for _, mode := range Modes {
		t.Run(string(mode), func(t *testing.T) {
			e := Start(t, mode)
			alice := e.Device("alice", "alice@test.realm")
			cases := []struct {
				name string
				run  func(t *testing.T)
			}{
				{"SAN user is served as herself", func(t *testing.T) {
					c := e.Client(alice)
					for i := range 3 {
						code, body := post(c, e.easURL("Sync", "alice", "ALICE1"))
						if code != http.StatusOK || body != "user=alice@test.realm@TEST.REALM\n" {
							t.Fatalf("request %d: %d %q", i, code, body)
						}
					}
				}},
				{"mapped user: the directory's user, not the SAN's", func(t *testing.T) {
					// The certificate names alice in its SAN but is published on
					// bob: mapping takes precedence, as in SEG.
					d := e.Device("bob-phone", "alice@test.realm")
					e.Publish(d, "bob")
					code, body := post(e.Client(d), e.easURL("Sync", "bob", "BOB1"))
					if code != http.StatusOK || body != "user=bob@test.realm@TEST.REALM\n" {
						t.Fatalf("%d %q, want bob", code, body)
					}
				}},
				{"untrusted CA is refused before Exchange", func(t *testing.T) {
					before := e.Exchange.Served()
					code, body := post(e.Client(e.UntrustedDevice("mallory", "alice@test.realm")), e.easURL("Sync", "alice", "EVIL1"))
					if code == http.StatusOK {
						t.Fatalf("served: %q", body)
					}
					if e.Exchange.Served() != before {
						t.Fatal("a request from an untrusted certificate reached Exchange")
					}
				}},
				{"no certificate is refused", func(t *testing.T) {
					if code, body := post(e.Client(Device{}), e.easURL("Sync", "alice", "NONE1")); code == http.StatusOK {
						t.Fatalf("served without a certificate: %q", body)
					}
				}},
				{"revoked after start is refused at the next CRL fetch", func(t *testing.T) {
					d := e.Device("dave", "dave@test.realm")
					if code, body := post(e.Client(d), e.easURL("Sync", "dave", "DAVE1")); code != http.StatusOK {
						t.Fatalf("before revocation: %d %q", code, body)
					}
					e.Revoke(d)
					if !testpoll.Within(20*time.Second, func() bool {
						code, _ := post(e.Client(d), e.easURL("Sync", "dave", "DAVE1"))
						return code != http.StatusOK
					}) {
						t.Fatal("a revoked certificate is still served 20 s after the CRL listed it")
					}
				}},
				{"401 from Exchange: one new ticket, one retry, served", func(t *testing.T) {
					d := e.Device("carol", "carol@test.realm")
					c := e.Client(d)
					if code, _ := post(c, e.easURL("Sync", "carol", "CAROL1")); code != http.StatusOK {
						t.Fatalf("first request: %d", code)
					}
					const carol = "carol@test.realm@TEST.REALM"
					e.Exchange.Fail401(carol, 1)
					s4u := e.S4U2SelfCount()
					code, body := post(c, e.easURL("Sync", "carol", "CAROL1"))
					if code != http.StatusOK || body != "user="+carol+"\n" {
						t.Fatalf("after a 401: %d %q, want served after the retry", code, body)
					}
					if e.Exchange.Pending401(carol) != 0 {
						t.Fatal("Exchange never answered 401: the retry was not exercised")
					}
					if n := e.S4U2SelfCount() - s4u; n != 1 {
						t.Fatalf("%d new S4U2Self exchanges for the retry, want 1 (a fresh ticket)", n)
					}
				}},
				{"sensitive user: 403 with no request to Exchange", func(t *testing.T) {
					before := e.Exchange.Served()
					code, body := post(e.Client(e.Device("eve", "eve@test.realm")), e.easURL("Sync", "eve", "EVE1"))
					if code != http.StatusForbidden || e.Exchange.Served() != before {
						t.Fatalf("%d %q; want 403 and nothing sent to Exchange", code, body)
					}
				}},
				{"Ping held at Exchange is answered", func(t *testing.T) {
					code, body := post(e.Client(alice), e.easURL("Ping", "alice", "ALICE1", "hold", "300"))
					if code != http.StatusOK || body != "user=alice@test.realm@TEST.REALM\n" {
						t.Fatalf("Ping: %d %q", code, body)
					}
					// Parked off the HTTP server, not sent through the proxy path.
					m, err := e.EdgeMetrics()
					if err != nil {
						t.Fatal(err)
					}
					lines := grepLines(m, "segmesh_edge_ping_fallbacks_total{")
					if lines == "" {
						t.Fatal("no segmesh_edge_ping_fallbacks_total in /metrics")
					}
					for _, l := range strings.Split(lines, "\n") {
						if runtime.GOOS == "linux" && !strings.HasSuffix(l, " 0") {
							t.Fatalf("the Ping fell back to the proxy path: %s", l)
						}
					}
				}},
				{"KDC down: a new user gets 503, a cached one is served", func(t *testing.T) {
					e.StopKDC()
					code, body := post(e.Client(e.Device("frank", "frank@test.realm")), e.easURL("Sync", "frank", "FRANK1"))
					if code != http.StatusServiceUnavailable {
						t.Fatalf("new user with the KDC down: %d %q, want 503", code, body)
					}
					if code, body := post(e.Client(alice), e.easURL("Sync", "alice", "ALICE1")); code != http.StatusOK {
						t.Fatalf("cached user with the KDC down: %d %q", code, body)
					}
				}},
				{"SIGTERM: the request in flight finishes, a held Ping gets Status 1, then the edge stops", func(t *testing.T) {
					type answer struct {
						code int
						body string
					}
					before := e.Exchange.Started()
					held, ping := make(chan answer, 1), make(chan answer, 1)
					go func() {
						code, body := post(e.Client(alice), e.easURL("Sync", "alice", "ALICE2", "hold", "1500"))
						held <- answer{code, body}
					}()
					go func() {
						// Held at Exchange for a minute: the drain must answer it.
						code, body := post(e.Client(alice), e.easURL("Ping", "alice", "ALICE4", "hold", "60000"))
						ping <- answer{code, body}
					}()
					// Let both reach Exchange before the drain starts.
					if !testpoll.Within(5*time.Second, func() bool { return e.Exchange.Started() >= before+2 }) {
						t.Fatal("the held requests never reached Exchange")
					}
					stopped := e.StopEdgeAsync()
					a := <-held
					if a.code != http.StatusOK || a.body != "user=alice@test.realm@TEST.REALM\n" {
						t.Fatalf("request in flight at SIGTERM: %d %q", a.code, a.body)
					}
					// MS-ASCMD 2.2.3.177.11: a Ping with Status 1, in WBXML.
					status1 := string([]byte{0x03, 0x01, 0x6a, 0x00, 0x00, 0x0d, 0x45, 0x47, 0x03, '1', 0x00, 0x01, 0x01})
					if p := <-ping; p.code != http.StatusOK || p.body != status1 {
						t.Fatalf("Ping held at SIGTERM: %d %q, want 200 and Ping Status 1", p.code, p.body)
					}
					if err := <-stopped; err != nil {
						t.Fatalf("drain: %v", err)
					}
					if code, body := post(e.Client(alice), e.easURL("Sync", "alice", "ALICE3")); code != 0 {
						t.Fatalf("after the drain the edge still answers: %d %q", code, body)
					}
				}},
			}
			for _, tc := range cases {
				if !t.Run(tc.name, tc.run) {
					t.Logf("%s", fmt.Sprint(e.Logs()))
				}
			}
		})
	}
}
