package testenv

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/segmesh/segmesh/internal/testpoll"
)

// phoneClient is e.Client(d) keeping its TLS sessions in cache, as iOS and
// Android do, with a new connection (so a new handshake) per request.
func phoneClient(e *Env, d Device, cache tls.ClientSessionCache) *http.Client {
	c := e.Client(d)
	tr := c.Transport.(*http.Transport)
	tr.TLSClientConfig.ClientSessionCache = cache
	tr.DisableKeepAlives = true
	return c
}

// syncAt posts a Sync to the edge at base and returns the status, the body
// and whether the handshake resumed; a refused handshake is status 0.
func syncAt(c *http.Client, base, user string) (int, string, bool) {
	u := base + "/Microsoft-Server-ActiveSync?Cmd=Sync&User=" + user + "&DeviceId=RESUME1&DeviceType=TestPhone"
	resp, err := c.Post(u, "application/vnd.ms-sync.wbxml", strings.NewReader("<Sync/>"))
	if err != nil {
		return 0, err.Error(), false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.TLS != nil && resp.TLS.DidResume
}

// TestResumptionAcrossEdges: edges sharing segmesh.edge.tlsSessionTicketKeyFile,
// in both shapes. A phone's session from one edge resumes on the other
// and is the phone's user; a client with bob's certificate resuming
// alice's session is alice; an edge not trusting the phone's CA refuses
// the session another edge issued; once the certificate is revoked the
// session resumes nowhere; /metrics counts resumed handshakes and /status
// shows the key's fingerprint, never the key.
func TestResumptionAcrossEdges(t *testing.T) {
	for _, mode := range Modes {
		t.Run(string(mode), func(t *testing.T) {
			key := make([]byte, 32)
			if _, err := rand.Read(key); err != nil {
				t.Fatal(err)
			}
			keyFile := filepath.Join(t.TempDir(), "tickets.key")
			if err := os.WriteFile(keyFile, key, 0o600); err != nil {
				t.Fatal(err)
			}
			e := StartWith(t, mode, func(cfg map[string]any) {
				section(section(cfg, "segmesh"), "edge")["tlsSessionTicketKeyFile"] = keyFile
			})
			first := e.EdgeURL("")
			second := e.AnotherEdge(nil)
			rogueTrust := filepath.Join(t.TempDir(), "rogue-ca.pem")
			writeFile(t, rogueTrust, e.w.rogue.PEM())
			strict := e.AnotherEdge(func(cfg map[string]any) {
				cfg["clientCertTrustStorePath"] = rogueTrust
				// All-in-one, its own crl role cannot verify the site's CRL
				// against that trust: start without it.
				section(cfg, "customGatewaySettings")["fail.hard.on.crl.download.failure.during.server.startup"] = "false"
			})

			alice, bob := e.Device("alice", "alice@test.realm"), e.Device("bob", "bob@test.realm")
			aliceCache := tls.NewLRUClientSessionCache(4)
			phone := phoneClient(e, alice, aliceCache)
			const aliceIs = "user=alice@test.realm@TEST.REALM\n"
			want := func(where, base string, c *http.Client, resumed bool) {
				t.Helper()
				code, body, did := syncAt(c, base, "alice")
				if code != http.StatusOK || body != aliceIs || did != resumed {
					t.Fatalf("%s: %d %q resumed %v, want 200 %q resumed %v", where, code, body, did, aliceIs, resumed)
				}
			}
			want("first edge, first connection", first, phone, false)
			want("second edge", second, phone, true)
			want("first edge again", first, phone, true)
			// bob's certificate, alice's sessions: the session is alice's.
			want("bob's client with alice's session", second, phoneClient(e, bob, aliceCache), true)
			if code, body, did := syncAt(phone, strict, "alice"); code != 0 {
				t.Fatalf("edge not trusting the device's CA: %d %q resumed %v, want the handshake refused", code, body, did)
			}

			m, err := e.EdgeMetrics()
			if err != nil {
				t.Fatal(err)
			}
			if !regexp.MustCompile(`segmesh_edge_tls_handshakes_total\{[^}]*result="resumed"[^}]*\} [1-9]`).MatchString(m) {
				t.Fatalf("/metrics counts no resumed handshake:\n%s", grepLines(m, "tls_handshakes"))
			}
			_, status, err := e.EdgeAdmin("/status.json")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(status, "ticket_key_fingerprints") || strings.Contains(status, hex.EncodeToString(key[:4])) {
				t.Fatalf("/status.json: want the key's fingerprint and never the key:\n%s", grepLines(status, "ticket_key"))
			}

			e.Revoke(alice)
			if !testpoll.Within(20*time.Second, func() bool {
				code, _, _ := syncAt(phone, second, "alice")
				return code == 0
			}) {
				t.Fatal("a revoked certificate's session still resumes on the second edge")
			}
			if !testpoll.Within(20*time.Second, func() bool {
				code, _, _ := syncAt(phone, first, "alice")
				return code == 0
			}) {
				t.Fatal("a revoked certificate's session still resumes on the first edge")
			}
		})
	}
}
