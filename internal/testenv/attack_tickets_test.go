package testenv

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmesh/segmesh/internal/testpoll"
)

// TestAttackTicketKeyRotatedInPlace (review rvtls): the shared session
// ticket key leaked, so the admin rewrites the key file in place (same
// path, config.json untouched) with a new key only. segmesh run must see
// the file's new content at its poll and put the new key in force: a
// ticket of the old key no longer resumes. Then a rotation gone wrong (the
// file world-readable) is refused, says so on /readyz naming the setting,
// and the key in force stays (its tickets still resume). No key, old or
// new or refused, shows in the logs, /status, /readyz or /metrics.
func TestAttackTicketKeyRotatedInPlace(t *testing.T) {
	for _, mode := range Modes {
		t.Run(string(mode), func(t *testing.T) {
			k1, k2, k3 := randomKey(t), randomKey(t), randomKey(t)
			keyFile := filepath.Join(t.TempDir(), "tickets.key")
			writeFile(t, keyFile, k1)
			e := StartWith(t, mode, func(cfg map[string]any) {
				section(section(cfg, "segmesh"), "edge")["tlsSessionTicketKeyFile"] = keyFile
			})
			alice := e.Device("alice", "alice@test.realm")
			const aliceIs = "user=alice@test.realm@TEST.REALM\n"
			sync := func(where string, cache tls.ClientSessionCache, resumed bool) {
				t.Helper()
				code, body, did := syncAt(phoneClient(e, alice, cache), e.EdgeURL(""), "alice")
				if code != http.StatusOK || body != aliceIs || did != resumed {
					t.Fatalf("%s: %d %q resumed %v, want 200 %q resumed %v", where, code, body, did, aliceIs, resumed)
				}
			}
			// A session under k1, kept for after the rotation.
			underK1 := tls.NewLRUClientSessionCache(4)
			sync("first connection", underK1, false)
			probe := tls.NewLRUClientSessionCache(4)
			sync("a control phone's first connection", probe, false)
			sync("a control phone resumes under k1", probe, true)

			// The key rotated in place: k2 only.
			writeFile(t, keyFile, k2)
			testpoll.Until(t, 30*time.Second, "/status to show the new key's fingerprint", func() bool {
				_, status, err := e.EdgeAdmin("/status.json")
				return err == nil && strings.Contains(status, fingerprint(k2)) && !strings.Contains(status, fingerprint(k1))
			})
			sync("the k1 session after k1 was removed from the file", underK1, false)
			sync("a session under k2", underK1, true)

			// A rotation gone wrong: k3 in a world-readable file.
			writeFile(t, keyFile, k3)
			if err := os.Chmod(keyFile, 0o644); err != nil {
				t.Fatal(err)
			}
			testpoll.Until(t, 30*time.Second, "/readyz to say the reload was refused, naming the key file setting", func() bool {
				code, body, err := e.EdgeAdmin("/readyz")
				return err == nil && code == http.StatusOK && strings.Contains(body, "refused") &&
					strings.Contains(body, "segmesh.edge.tlsSessionTicketKeyFile")
			})
			sync("a session under k2 after the refused reload", underK1, true)
			if _, status, err := e.EdgeAdmin("/status.json"); err != nil || !strings.Contains(status, fingerprint(k2)) || strings.Contains(status, fingerprint(k3)) {
				t.Fatalf("/status after the refused reload (%v): want k2's fingerprint in force, not k3's:\n%s", err, grepLines(status, "ticket_key"))
			}

			_, status, _ := e.EdgeAdmin("/status.json")
			_, ready, _ := e.EdgeAdmin("/readyz")
			metrics, _ := e.EdgeMetrics()
			for where, text := range map[string]string{"logs": e.Logs(), "/status": status, "/readyz": ready, "/metrics": metrics} {
				for i, k := range [][]byte{k1, k2, k3} {
					for _, enc := range []string{hex.EncodeToString(k[:8]), base64.StdEncoding.EncodeToString(k[:9]),
						base64.RawURLEncoding.EncodeToString(k[:9]), strings.ToUpper(hex.EncodeToString(k[:8]))} {
						if strings.Contains(text, enc) {
							t.Fatalf("%s shows key %d (%s)", where, i+1, enc)
						}
					}
				}
			}
		})
	}
}

// randomKey is one 32-byte session ticket key.
func randomKey(t testing.TB) []byte {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

// fingerprint is the edge's /status fingerprint of a key (services/edge
// door_tickets.go: a truncated SHA-256 of a label and the key).
func fingerprint(k []byte) string {
	sum := sha256.Sum256(append([]byte("segmesh session ticket key\x00"), k...))
	return hex.EncodeToString(sum[:6])
}
