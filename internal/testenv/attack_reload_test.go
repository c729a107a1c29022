package testenv

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/segmesh/segmesh/internal/testpoll"
)

// TestAttackReloadWeakening edits config.json of a running gateway to turn
// off, in one save, every switch that keeps the wrong phone out or the
// wrong user from being delegated: requireClientCertificate, KCD,
// certificate mapping, revocation, and turns on the SAN fallback and RC4.
// None of it may apply silently: the running gateway keeps refusing a
// revoked and an untrusted device and keeps delegating the mapped user,
// and /readyz and /status name every one of those settings as waiting for
// a restart. Attacker review of 88a12a3 / 342f5f5; held.
func TestAttackReloadWeakening(t *testing.T) {
	e := Start(t, AllInOne)
	alice := e.Device("alice", "alice@test.realm")
	revoked := e.Device("rev", "rev@test.realm")
	untrusted := e.UntrustedDevice("mallory", "alice@test.realm")
	u := e.easURL("Sync", "x", "X1")
	if code, body := post(e.Client(alice), u); code != http.StatusOK {
		t.Fatalf("before: %d %q", code, body)
	}
	e.Revoke(revoked)
	testpoll.Until(t, 30*time.Second, "the revoked device refused", func() bool { code, _ := post(e.Client(revoked), u); return code != http.StatusOK })

	e.EditConfig(func(cfg map[string]any) {
		cfg["requireClientCertificate"] = false
		section(cfg, "kcd")["enabled"] = false
		gw := section(cfg, "customGatewaySettings")
		gw["cert.mapping.enabled"] = "false"
		gw["enable.cert.revocation.validation"] = "false"
		section(section(cfg, "segmesh"), "identity")["fallbackWhenUnavailable"] = true
		section(section(cfg, "segmesh"), "ticket")["allowRc4"] = true
	})
	pending := []string{"requireClientCertificate", "kcd.enabled", "cert.mapping.enabled", "enable.cert.revocation.validation",
		"segmesh.identity.fallbackWhenUnavailable", "segmesh.ticket.allowRc4"}
	testpoll.Until(t, 30*time.Second, "/readyz to name the weakened settings as waiting for a restart", func() bool {
		code, body, err := e.EdgeAdmin("/readyz")
		if err != nil || code != http.StatusOK {
			return false
		}
		for _, k := range pending {
			if !strings.Contains(body, k) {
				return false
			}
		}
		return true
	})
	if _, body, err := e.EdgeAdmin("/status"); err != nil || !strings.Contains(body, "takes a restart") {
		t.Errorf("/status does not say settings wait for a restart (%v)", err)
	}
	// Still the configuration of the start, a few rounds after the reload.
	for range 5 {
		if code, body := post(e.Client(revoked), u); code == http.StatusOK {
			t.Fatalf("the revoked device was served after the reload: %q", body)
		}
		if code, body := post(e.Client(untrusted), u); code == http.StatusOK {
			t.Fatalf("an untrusted device was served after the reload: %q", body)
		}
		if code, body := post(e.Client(alice), u); code != http.StatusOK || body != "user=alice@test.realm@TEST.REALM\n" {
			t.Fatalf("alice after the reload: %d %q, want her own delegated user", code, body)
		}
	}
}
