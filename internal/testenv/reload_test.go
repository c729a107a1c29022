package testenv

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmesh/segmesh/internal/testpoll"
)

// TestReloadUnderLoad edits config.json while a load loop runs and a Ping
// is held at Exchange, in both shapes: a new Exchange URL and log level
// apply live (new requests reach the new Exchange; the held Ping is
// answered by the old one; no request fails), the mapping URL moves to
// another directory (a device published there maps to its user there),
// the server certificate renewed in place is what new connections get
// (the load loop's connection keeps its own), a broken edit is refused
// with the problem on /readyz (still 200) and /metrics, a setting the edge
// cannot change live is named as waiting for a restart while a changed SPN
// list (live in edge and ticket) is not, and fixing the file clears both.
func TestReloadUnderLoad(t *testing.T) {
	for _, mode := range Modes {
		t.Run(string(mode), func(t *testing.T) {
			e := Start(t, mode)
			alice := e.Device("alice", "alice@test.realm")
			c := e.Client(alice)
			if code, body := post(c, e.easURL("Sync", "alice", "ALICE1")); code != http.StatusOK {
				t.Fatalf("before: %d %q", code, body)
			}
			type answer struct {
				code int
				body string
			}
			ping := make(chan answer, 1)
			started := e.Exchange.Started()
			go func() {
				code, body := post(e.Client(alice), e.easURL("Ping", "alice", "ALICE2", "hold", "8000"))
				ping <- answer{code, body}
			}()
			testpoll.Until(t, 30*time.Second, "the Ping to reach Exchange", func() bool { return e.Exchange.Started() > started })

			var sent, failed atomic.Int64
			var failures sync.Map
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Add(1)
			go func() { // bounded: stops when the test says so
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					sent.Add(1)
					if code, body := post(c, e.easURL("Sync", "alice", "ALICE1")); code != http.StatusOK {
						failed.Add(1)
						failures.Store(i, body)
					}
				}
			}()
			stopLoad := func() {
				select {
				case <-stop:
				default:
					close(stop)
				}
				wg.Wait()
			}
			t.Cleanup(stopLoad)

			next := e.NewExchange()
			e.EditConfig(func(cfg map[string]any) {
				section(section(cfg, "segmesh"), "edge")["exchangeUrls"] = []any{next.URL()}
				section(cfg, "segmesh")["telemetry"] = map[string]any{"logLevel": "debug"}
			})
			testpoll.Until(t, 30*time.Second, "requests at the new Exchange", func() bool { return next.Served() > 0 })

			// The mapping moves to another directory, where bob's phone is
			// published on carol; alice (published nowhere) keeps her SAN.
			bob := e.Device("bob", "bob@test.realm")
			dir2 := e.NewDirectory()
			dir2.Publish(bob, "carol")
			if code, body := post(e.Client(bob), e.easURL("Sync", "bob", "BOB1")); code != http.StatusOK || body != "user=bob@test.realm@TEST.REALM\n" {
				t.Fatalf("bob before the mapping change: %d %q", code, body)
			}
			e.EditConfig(func(cfg map[string]any) { section(cfg, "customGatewaySettings")["cert.mapping.ldap.url"] = dir2.URL() })
			testpoll.Until(t, 30*time.Second, "bob's phone mapped through the new directory", func() bool {
				code, body := post(e.Client(bob), e.easURL("Sync", "bob", "BOB1"))
				return code == http.StatusOK && body == "user=carol@test.realm@TEST.REALM\n"
			})

			// The server certificate is renewed in place.
			renewed := e.RotateServerCertificate()
			testpoll.Until(t, 30*time.Second, "a new connection to get the renewed server certificate", func() bool {
				resp, err := e.Client(alice).Get(e.easURL("Options", "alice", "ALICE1"))
				if err != nil {
					return false
				}
				_ = resp.Body.Close()
				return resp.TLS != nil && resp.TLS.PeerCertificates[0].Equal(renewed)
			})

			e.EditConfig(func(cfg map[string]any) { section(cfg, "segmesh")["telemetry"] = map[string]any{"logLevel": "loud"} })
			testpoll.Until(t, 30*time.Second, "/readyz to say the reload was refused", func() bool {
				code, body, err := e.EdgeAdmin("/readyz")
				return err == nil && code == http.StatusOK && strings.Contains(body, "reload refused") &&
					strings.Contains(body, "segmesh.telemetry.logLevel")
			})
			if m, err := e.EdgeMetrics(); err != nil || !strings.Contains(m, "segmesh_config_reload_refused 1") {
				t.Errorf("/metrics does not show the refusal (%v):\n%s", err, grepLines(m, "segmesh_config"))
			}
			served := next.Served()
			testpoll.Until(t, 30*time.Second, "requests served after the refusal", func() bool { return next.Served() > served+2 })

			e.EditConfig(func(cfg map[string]any) {
				section(cfg, "segmesh")["telemetry"] = map[string]any{"logLevel": "info"}
				section(cfg, "kcd")["targetSPN"] = SPN + ",HTTP/other.test.realm"
				section(section(cfg, "segmesh"), "edge")["drainGraceSeconds"] = 7
			})
			testpoll.Until(t, 30*time.Second, "/readyz to clear the refusal and name the drain grace as waiting for a restart", func() bool {
				code, body, err := e.EdgeAdmin("/readyz")
				return err == nil && code == http.StatusOK && !strings.Contains(body, "refused") && strings.Contains(body, "segmesh.edge.drainGraceSeconds")
			})
			if _, body, err := e.EdgeAdmin("/readyz"); err != nil || strings.Contains(body, "kcd.targetSPN") {
				t.Errorf("/readyz names the SPN list as waiting for a restart; it is live (%v):\n%s", err, body)
			}

			stopLoad()
			if failed.Load() != 0 {
				failures.Range(func(k, v any) bool { t.Errorf("request %v failed: %v", k, v); return true })
				t.Fatalf("%d of %d requests failed across the reloads", failed.Load(), sent.Load())
			}
			select {
			case a := <-ping:
				if a.code != http.StatusOK || a.body != "user=alice@test.realm@TEST.REALM\n" {
					t.Fatalf("held Ping: %d %q", a.code, a.body)
				}
			case <-time.After(60 * time.Second):
				t.Fatal("the held Ping was not answered")
			}
			if e.Exchange.Served() == 0 {
				t.Fatal("the old Exchange answered nothing")
			}
			t.Logf("%d requests, none failed; the new Exchange served %d", sent.Load(), next.Served())
		})
	}
}
