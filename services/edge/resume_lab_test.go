//go:build lab

package edge_test

import (
	"crypto/rand"
	"crypto/tls"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/segmesh/segmesh/internal/labenv"
)

// TestLabResumptionAcrossEdges: two `segmesh run` sharing
// segmesh.edge.tlsSessionTicketKeyFile against the lab (Samba's KDC, the
// lab PKI, Apache's Negotiate stand-in). alice's phone resumes on the
// second edge the session the first issued, and Exchange authenticates
// alice; a client holding bob's certificate that resumes alice's session
// is alice, never bob.
func TestLabResumptionAcrossEdges(t *testing.T) {
	lab := labenv.Up(t)
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "tickets.key")
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	shared := runOptions{config: func(cfg map[string]any) {
		section(section(cfg, "segmesh"), "edge")["tlsSessionTicketKeyFile"] = keyFile
	}}
	first, second := startSegmesh(t, lab, shared), startSegmesh(t, lab, shared)
	cache := tls.NewLRUClientSessionCache(4)
	phone := func(user string) *http.Client {
		c := labClient(t, lab, user)
		tr := c.Transport.(*http.Transport)
		tr.TLSClientConfig.ClientSessionCache = cache
		tr.DisableKeepAlives = true // a new connection, so a handshake, per request
		return c
	}
	sync := func(c *http.Client, sm *segmesh, resumed bool) {
		t.Helper()
		resp, b, err := do(t, c, http.MethodPost, easURL(sm.base, "Sync", "alice", "LABRESUME1"), []byte("<sync/>"), nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("Sync: %v %v %s", resp, err, b)
		}
		if did := resp.TLS != nil && resp.TLS.DidResume; did != resumed {
			t.Fatalf("resumed %v, want %v", did, resumed)
		}
		e := mustEcho(t, c, http.MethodPost, easURL(sm.base, "Sync", "alice", "LABRESUME1"), []byte("<sync/>"), nil)
		if got := upnOf(e.RemoteUser); got != "alice@lab.test" || e.AuthType != "Negotiate" {
			t.Fatalf("Exchange authenticated %q by %q, want alice@lab.test by Negotiate", e.RemoteUser, e.AuthType)
		}
	}
	sync(phone("alice"), first, false)
	sync(phone("alice"), second, true)
	// bob's certificate, alice's session: alice.
	sync(phone("bob"), second, true)
}
