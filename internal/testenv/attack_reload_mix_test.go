package testenv

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/segmesh/segmesh/internal/testpoll"
	"github.com/segmesh/segmesh/pkg/config"
)

// TestAttackReloadPendingSettingApplied: in one process running both roles
// that read the KCD service account's password (ticket and identity), a
// changed password waits for a restart (the ticket role does not apply it
// live) and /readyz says so. Saved together with a setting the identity
// role does apply live (its LDAP pool size), the password must still not be
// applied by one role and reported as waiting by the gateway: either no role
// binds with it, or /readyz does not name it. The directory here accepts
// only the new password (the admin changed it in AD first), so a mapping
// done after the reload shows which one the identity role binds with.
// Attacker review of 9660f9e / 4fba3d6 (a mix of old and new settings).
func TestAttackReloadPendingSettingApplied(t *testing.T) {
	const newPassword = "Svc-Pass-rotated-2b7?"
	e := Start(t, AllInOne)
	alice := e.Device("alice", "alice@test.realm")
	if code, body := post(e.Client(alice), e.easURL("Sync", "alice", "MIX1")); code != http.StatusOK {
		t.Fatalf("before: %d %q", code, body)
	}
	e.w.ldap.AddBind("CN="+ServiceAccount+",CN=Users,"+baseDN, newPassword)
	e.EditConfig(func(cfg map[string]any) {
		section(cfg, "kcd")["serviceAccountPassword"] = newPassword + config.PlaintextSuffix
		section(section(cfg, "segmesh"), "identity")["ldapPoolSize"] = 3
	})
	testpoll.Until(t, 30*time.Second, "the reload to be applied or refused", func() bool {
		code, body, err := e.EdgeAdmin("/readyz")
		return err == nil && code == http.StatusOK &&
			(strings.Contains(body, "kcd.serviceAccountPassword") || strings.Contains(body, "reload refused"))
	})
	_, readyz, err := e.EdgeAdmin("/readyz")
	if err != nil {
		t.Fatal(err)
	}
	pending := strings.Contains(readyz, "wait for a restart") && strings.Contains(readyz, "kcd.serviceAccountPassword")

	// A certificate published after the reload: its mapping needs a bind.
	d := e.Device("bob-phone", "alice@test.realm")
	e.Publish(d, "bob")
	code, body := post(e.Client(d), e.easURL("Sync", "bob", "MIX2"))
	boundWithNew := code == http.StatusOK && body == "user=bob@test.realm@TEST.REALM\n"
	if pending && boundWithNew {
		t.Fatalf("/readyz says kcd.serviceAccountPassword waits for a restart, but the identity role binds with the new password "+
			"(a live identity setting saved with it carried it in): one role runs on the new password, the ticket role on the old, "+
			"and the gateway reports neither\n/readyz: %s", readyz)
	}
	if !pending && !strings.Contains(readyz, "reload refused") {
		t.Fatalf("/readyz names neither the password as waiting nor a refusal: %s", readyz)
	}
}
