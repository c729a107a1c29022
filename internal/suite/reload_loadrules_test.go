package suite

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/internal/testpki"
	"github.com/segmesh/segmesh/pkg/config"
)

// loadRuleFiles writes a device CA and a server certificate into dir and
// returns a config.json builder for an edge and identity process: the
// Exchange URL, the forwarded paths (nil: the default), and the
// certificate mapping (on or off, its LDAP URL and bind user).
func loadRuleFiles(t testing.TB, dir string) func(exchange string, paths []string, mapping bool, ldapURL, ldapUser string) map[string]any {
	t.Helper()
	trust := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(trust, testpki.NewCA(t, "Device CA").PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := testpki.NewCA(t, "Server CA").Server(t, []string{"127.0.0.1"}).WriteFiles(t, dir, "edge")
	return func(exchange string, paths []string, mapping bool, ldapURL, ldapUser string) map[string]any {
		edge := map[string]any{"listen": "127.0.0.1:0", "serverCertFile": certFile, "serverKeyFile": keyFile,
			"exchangeUrls": []string{exchange}}
		if paths != nil {
			edge["paths"] = paths
		}
		return map[string]any{
			"clientCertTrustStorePath": trust,
			"kcd": map[string]any{"enabled": true, "targetSPN": "HTTP/mail.corp.example", "serviceAccountUserName": "svc_seg",
				"serviceAccountPassword": "Svc-Pass-1" + config.PlaintextSuffix,
				"domains":                []any{map[string]any{"domain": "CORP.EXAMPLE", "domainController": "dc1.corp.example"}}},
			"customGatewaySettings": map[string]any{config.KeyCertMappingEnabled: mapping,
				config.KeyCertMappingLDAPURL: ldapURL, config.KeyCertMappingLDAPUser: ldapUser},
			// The ticket role runs elsewhere (roles below): the edge needs its address.
			"segmesh": map[string]any{"edge": edge, "peers": map[string]any{"ticket": "127.0.0.1:9443"}},
		}
	}
}

// TestReloadChecksLoadRulesAgainstRestartSettings: a save that changes a
// setting applied live together with one that takes a restart, where the
// file as saved passes config.Load but the live setting beside the running
// value of the other breaks one of config.Load's own rules (not a role's
// Validate), is refused before any role prepares, naming both settings and
// the fix. On main these were applied: the process then ran a combination
// `segmesh config check` refuses (an Exchange URL holding a path the
// running edge appends itself; an LDAP URL with ldaps:// on a plain port
// while the running identity role keeps the mapping on).
func TestReloadChecksLoadRulesAgainstRestartSettings(t *testing.T) {
	const good, dn = "ldaps://dc1.corp.example:3269", "CN=svc_seg,CN=Users,DC=corp,DC=example"
	roles := []string{"edge", "identity"}
	live := map[string][]string{
		"edge":     {"segmesh.edge.exchangeUrls"},
		"identity": {config.KeyCertMappingLDAPURL, config.KeyCertMappingLDAPUser},
	}
	for _, tc := range []struct {
		name             string
		save             func(f func(string, []string, bool, string, string) map[string]any) map[string]any
		waiting, liveKey string
	}{
		{"an Exchange URL holding /EWS while segmesh.edge.paths, which drops /EWS, waits for a restart",
			func(f func(string, []string, bool, string, string) map[string]any) map[string]any {
				return f("https://mail.corp.example/EWS", []string{"/Microsoft-Server-ActiveSync"}, true, good, dn)
			}, "segmesh.edge.paths", "segmesh.edge.exchangeUrls"},
		{"ldaps:// on port 389 while cert.mapping.enabled, turned off, waits for a restart",
			func(f func(string, []string, bool, string, string) map[string]any) map[string]any {
				return f("https://mail.corp.example", nil, false, "ldaps://dc1.corp.example:389", dn)
			}, config.KeyCertMappingEnabled, config.KeyCertMappingLDAPURL},
		{"a bind user that is not a DN while cert.mapping.enabled, turned off, waits for a restart",
			func(f func(string, []string, bool, string, string) map[string]any) map[string]any {
				return f("https://mail.corp.example", nil, false, good, "svc_seg")
			}, config.KeyCertMappingEnabled, config.KeyCertMappingLDAPUser},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "config.json")
			file := loadRuleFiles(t, dir)
			writeJSON(t, path, file("https://mail.corp.example", nil, true, good, dn))
			g := &validatingApplier{live: live}
			r, _ := rolesReloader(t, path, roles, g)
			writeJSON(t, path, tc.save(file))
			// The file as saved is one a start accepts.
			if _, _, err := LoadForRun(path, roles, slog.New(slog.DiscardHandler)); err != nil {
				t.Fatalf("the saved file does not pass Load: %v", err)
			}
			err := r.Reload(context.Background(), "SIGHUP")
			st := r.Status()
			if err == nil {
				t.Fatalf("applied %v (pending %v); want the save refused: the running %s beside the new %s breaks config.Load's rule",
					st.Applied, st.RestartPending, tc.waiting, tc.liveKey)
			}
			if !slices.ContainsFunc(st.Refused, func(p config.Problem) bool {
				text := p.Key + " " + p.Message + " " + p.Fix
				return strings.Contains(text, tc.waiting) && strings.Contains(text, tc.liveKey) && strings.Contains(p.Fix, "restart segmesh")
			}) {
				t.Errorf("no refusal names %s, %s and the restart: %+v", tc.waiting, tc.liveKey, st.Refused)
			}
			if g.asked != 0 {
				t.Errorf("the roles were asked to prepare %d times; want none", g.asked)
			}
		})
	}
}
