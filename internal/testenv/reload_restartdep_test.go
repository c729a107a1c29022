package testenv

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/segmesh/segmesh/internal/testpoll"
)

// TestReloadRefusalNamesTheSettingWaitingForARestart: certificate mapping
// turned off (cert.mapping.enabled takes a restart) and its URL removed in
// the same save (the URL is live). The identity role runs with mapping on
// until the restart, so it cannot take an empty URL: the save is refused.
// The refusal names both settings and the fix (restart, or save the URL
// change again after the restart), instead of the identity role's "the
// URL is invalid" for a file in which mapping is off.
func TestReloadRefusalNamesTheSettingWaitingForARestart(t *testing.T) {
	e := Start(t, AllInOne)
	e.EditConfig(func(cfg map[string]any) {
		gw := section(cfg, "customGatewaySettings")
		gw["cert.mapping.enabled"] = "false"
		delete(gw, "cert.mapping.ldap.url")
	})
	var status string
	testpoll.Until(t, 30*time.Second, "the reload to be refused", func() bool {
		code, body, err := e.EdgeAdmin("/status.json")
		status = body
		return err == nil && code == http.StatusOK && strings.Contains(body, `"refused"`)
	})
	for _, want := range []string{"cert.mapping.ldap.url", "the running cert.mapping.enabled", "restart segmesh",
		"after the restart that applies cert.mapping.enabled"} {
		if !strings.Contains(status, want) {
			t.Errorf("/status.json's refusal lacks %q:\n%s", want, status)
		}
	}
	// Mapping still works on the running configuration.
	alice := e.Device("alice", "alice@test.realm")
	if code, body := post(e.Client(alice), e.easURL("Sync", "alice", "DEP1")); code != http.StatusOK {
		t.Fatalf("after the refusal: %d %q", code, body)
	}
}
