package suite

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/segmesh/segmesh/internal/testpki"
	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/role"
	"github.com/segmesh/segmesh/pkg/safefile/safefiletest"
	"github.com/segmesh/segmesh/services/crl"
	"github.com/segmesh/segmesh/services/edge"
	"github.com/segmesh/segmesh/services/identity"
	"github.com/segmesh/segmesh/services/ticket"
)

// differentialBase is a valid config.json for a process running every
// role, with its files in dir.
func differentialBase(t *testing.T, dir string) map[string]any {
	t.Helper()
	trust := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(trust, testpki.NewCA(t, "Device CA").PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := testpki.NewCA(t, "Server CA").Server(t, []string{"127.0.0.1"}).WriteFiles(t, dir, "edge")
	return map[string]any{
		"clientCertTrustStorePath": trust,
		"requireClientCertificate": true,
		"kcd": map[string]any{"enabled": true, "targetSPN": "HTTP/mail.corp.example", "serviceAccountUserName": "svc_seg",
			"serviceAccountPassword": "Svc-Pass-1" + config.PlaintextSuffix,
			"domains":                []any{map[string]any{"domain": "CORP.EXAMPLE", "domainController": "dc1.corp.example"}}},
		"customGatewaySettings": map[string]any{config.KeyCertMappingEnabled: true,
			config.KeyCertMappingLDAPURL:  "ldaps://dc1.corp.example:3269",
			config.KeyCertMappingLDAPUser: "CN=svc_seg,CN=Users,DC=corp,DC=example",
			config.KeyRevocationEnabled:   true, config.KeyCRLURIs: "http://pki.corp.example/ca.crl"},
		"segmesh": map[string]any{
			"edge": map[string]any{"listen": "127.0.0.1:0", "serverCertFile": certFile, "serverKeyFile": keyFile,
				"exchangeUrls": []any{"https://mail.corp.example"}},
			"identity": map[string]any{},
		},
	}
}

// sub returns the object at key of m (made when missing).
func sub(m map[string]any, key string) map[string]any {
	if s, ok := m[key].(map[string]any); ok {
		return s
	}
	s := map[string]any{}
	m[key] = s
	return s
}

// TestStartReloadCheckAgree: the verdicts on one file of the start (`segmesh
// run`: LoadForRun and Validate, the checks before any role is built), of
// a reload to it from a running valid configuration (with the roles' own
// live settings and a role group that, as PrepareConfig does, refuses what
// its Validate refuses), and of `segmesh config check` (config.Load and
// Validate for every role, internal/cli's configCheck) agree, for edits of
// live and restart settings, valid and invalid, alone and in pairs. The one
// exception, by design, is reloadOnly: a pair the file states consistently
// but whose live half cannot be applied beside the running value of the
// half that waits for a restart. A restart accepts that file, and the
// reload names both settings and says to restart.
func TestStartReloadCheckAgree(t *testing.T) {
	roles := []string{role.CRL, role.Edge, role.Identity, role.Ticket}
	live := map[string][]string{
		role.CRL: (&crl.Service{}).LiveKeys(), role.Edge: (&edge.Service{}).LiveKeys(),
		role.Identity: (&identity.Service{}).LiveKeys(), role.Ticket: (&ticket.Service{}).LiveKeys(),
	}
	for _, tc := range []struct {
		name       string
		edit       func(t *testing.T, dir string, c map[string]any)
		valid      bool // start and check accept the file
		reloadOnly bool // valid, and the reload refuses it (the exception above)
	}{
		{"nothing changed", func(*testing.T, string, map[string]any) {}, true, false},
		{"live: another Exchange URL", func(_ *testing.T, _ string, c map[string]any) {
			sub(sub(c, "segmesh"), "edge")["exchangeUrls"] = []any{"https://mail2.corp.example"}
		}, true, false},
		{"restart: the forwarded paths", func(_ *testing.T, _ string, c map[string]any) {
			sub(sub(c, "segmesh"), "edge")["paths"] = []any{"/Microsoft-Server-ActiveSync"}
		}, true, false},
		{"live: a domain and a UPN suffix mapped to it", func(_ *testing.T, _ string, c map[string]any) {
			sub(c, "kcd")["domains"] = []any{map[string]any{"domain": "CORP.EXAMPLE", "domainController": "dc1.corp.example"},
				map[string]any{"domain": "OTHER.EXAMPLE", "domainController": "dc1.other.example"}}
			sub(sub(c, "segmesh"), "identity")["upnSuffixRealms"] = map[string]any{"other.example": "OTHER.EXAMPLE"}
		}, true, false},
		{"restart: KCD off", func(_ *testing.T, _ string, c map[string]any) { sub(c, "kcd")["enabled"] = false }, true, false},
		{"invalid live: no target SPN", func(_ *testing.T, _ string, c map[string]any) { sub(c, "kcd")["targetSPN"] = "" }, false, false},
		{"invalid live: an Exchange URL with the ActiveSync path", func(_ *testing.T, _ string, c map[string]any) {
			sub(sub(c, "segmesh"), "edge")["exchangeUrls"] = []any{"https://mail.corp.example/Microsoft-Server-ActiveSync"}
		}, false, false},
		{"invalid live: a UPN suffix mapped to a realm not in kcd.domains", func(_ *testing.T, _ string, c map[string]any) {
			sub(sub(c, "segmesh"), "identity")["upnSuffixRealms"] = map[string]any{"other.example": "OTHER.EXAMPLE"}
		}, false, false},
		{"invalid live: revocation on without a distribution point", func(_ *testing.T, _ string, c map[string]any) {
			sub(c, "customGatewaySettings")[config.KeyCRLURIs] = ""
		}, false, false},
		{"invalid restart: an unknown log format", func(_ *testing.T, _ string, c map[string]any) {
			sub(sub(c, "segmesh"), "telemetry")["logFormat"] = "xml"
		}, false, false},
		{"invalid restart: a missing admin token file", func(_ *testing.T, dir string, c map[string]any) {
			sub(sub(c, "segmesh"), "admin")["tokenFile"] = filepath.Join(dir, "no-token")
		}, false, false},
		{"invalid restart: the service account written as a UPN", func(_ *testing.T, _ string, c map[string]any) {
			sub(c, "kcd")["serviceAccountUserName"] = "svc_seg@corp.example"
		}, false, false},
		{"invalid live: a search base that is no distinguished name", func(_ *testing.T, _ string, c map[string]any) {
			sub(c, "customGatewaySettings")[config.KeyCertMappingLDAPBaseDN] = "corp.example"
		}, false, false},
		{"invalid: StartTLS on an ldaps:// URL", func(_ *testing.T, _ string, c map[string]any) {
			sub(sub(c, "segmesh"), "identity")["ldapStartTls"] = true
		}, false, false},
		{"invalid restart: the admin port the edge's", func(_ *testing.T, _ string, c map[string]any) {
			sub(sub(c, "segmesh"), "edge")["listen"] = "127.0.0.1:18443"
			sub(sub(c, "segmesh"), "admin")["listen"] = "127.0.0.1:18443"
		}, false, false},
		{"invalid restart: the admin port on an address of another machine", func(t *testing.T, _ string, c map[string]any) {
			if machineEnv.nonlocalBind() {
				t.Skip("this machine lets a process bind an address it does not hold (ip_nonlocal_bind)")
			}
			sub(sub(c, "segmesh"), "admin")["listen"] = "192.0.2.7:9090"
		}, false, false},
		{"invalid pair: a PFX trust store without its passcode", func(_ *testing.T, dir string, c map[string]any) {
			c["clientCertTrustStorePath"] = filepath.Join(dir, "ca.pfx")
		}, false, false},
		{"invalid file: the Exchange CA bundle a FIFO", func(t *testing.T, dir string, c map[string]any) {
			p := filepath.Join(dir, "exchange-ca.pem")
			safefiletest.Make(t, safefiletest.FIFO, p)
			sub(sub(c, "segmesh"), "edge")["exchangeCaFile"] = p
		}, false, false},
		{"invalid file: the LDAP CA bundle a FIFO", func(t *testing.T, dir string, c map[string]any) {
			p := filepath.Join(dir, "ldap-ca.pem")
			safefiletest.Make(t, safefiletest.FIFO, p)
			sub(sub(c, "segmesh"), "identity")["ldapCaFile"] = p
		}, false, false},
		{"invalid file: the server PFX a directory", func(t *testing.T, dir string, c map[string]any) {
			p := filepath.Join(dir, "edge.pfx")
			safefiletest.Make(t, safefiletest.Dir, p)
			e := sub(sub(c, "segmesh"), "edge")
			delete(e, "serverCertFile")
			delete(e, "serverKeyFile")
			e["serverPfxFile"], e["serverPfxPasscode"] = p, "pass"+config.PlaintextSuffix
		}, false, false},
		{"the console chain instead of a local trust store", func(t *testing.T, dir string, c map[string]any) {
			delete(c, "clientCertTrustStorePath")
			c["clientCertificateChain"] = writeCA(t, dir, "chain.pem", 0o644)
		}, true, false},
		{"invalid file: the trust store group-writable", func(t *testing.T, dir string, _ map[string]any) {
			chmodFile(t, filepath.Join(dir, "ca.pem"), 0o664)
		}, false, false},
		{"invalid file: the Exchange CA bundle world-writable", func(t *testing.T, dir string, c map[string]any) {
			sub(sub(c, "segmesh"), "edge")["exchangeCaFile"] = writeCA(t, dir, "exchange-ca.pem", 0o666)
		}, false, false},
		{"invalid file: the LDAP CA bundle in a directory others may write", func(t *testing.T, dir string, c map[string]any) {
			open := filepath.Join(dir, "open")
			if err := os.Mkdir(open, 0o700); err != nil {
				t.Fatal(err)
			}
			sub(sub(c, "segmesh"), "identity")["ldapCaFile"] = writeCA(t, open, "ldap-ca.pem", 0o644)
			chmodFile(t, open, 0o777)
		}, false, false},
		{"invalid file: the console chain group-writable", func(t *testing.T, dir string, c map[string]any) {
			delete(c, "clientCertTrustStorePath")
			c["clientCertificateChain"] = writeCA(t, dir, "chain.pem", 0o664)
		}, false, false},
		{"invalid dir: the crl state directory others may write (rvstate)", func(t *testing.T, dir string, c map[string]any) {
			state := filepath.Join(dir, "crl-state")
			if err := os.Mkdir(state, 0o700); err != nil {
				t.Fatal(err)
			}
			chmodFile(t, state, 0o777)
			sub(sub(c, "segmesh"), "crl")["stateDir"] = state
		}, false, false},
		{"invalid file: config.json group-writable", func(t *testing.T, dir string, _ map[string]any) {
			chmodFile(t, filepath.Join(dir, "config.json"), 0o664)
		}, false, false},
		{"pair: paths drop /EWS (restart) and the Exchange URL holds /EWS (live)", func(_ *testing.T, _ string, c map[string]any) {
			sub(sub(c, "segmesh"), "edge")["paths"] = []any{"/Microsoft-Server-ActiveSync"}
			sub(sub(c, "segmesh"), "edge")["exchangeUrls"] = []any{"https://mail.corp.example/EWS"}
		}, true, true},
		{"pair: mapping off (restart) and ldaps:// on port 389 (live)", func(_ *testing.T, _ string, c map[string]any) {
			sub(c, "customGatewaySettings")[config.KeyCertMappingEnabled] = false
			sub(c, "customGatewaySettings")[config.KeyCertMappingLDAPURL] = "ldaps://dc1.corp.example:389"
		}, true, true},
		{"pair: mapping off (restart) and no LDAP URL (live)", func(_ *testing.T, _ string, c map[string]any) {
			sub(c, "customGatewaySettings")[config.KeyCertMappingEnabled] = false
			sub(c, "customGatewaySettings")[config.KeyCertMappingLDAPURL] = ""
		}, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "config.json")
			writeJSON(t, path, differentialBase(t, dir))
			r, _ := rolesReloader(t, path, roles, &validatingApplier{live: live})
			c := differentialBase(t, dir)
			tc.edit(t, dir, c)
			writeJSON(t, path, c)

			start := true
			if cfg, report, err := LoadForRun(path, roles, slog.New(slog.DiscardHandler)); err != nil {
				start = false
			} else if config.ErrorOf(path, Validate(cfg, report, roles)) != nil {
				start = false
			}
			check := true
			if cfg, report, err := config.Load(path); err != nil {
				check = false
			} else if config.ErrorOf(path, Validate(cfg, report, nil)) != nil {
				check = false
			}
			reloadErr := r.Reload(context.Background(), "SIGHUP")
			reload := reloadErr == nil
			if start != tc.valid || check != tc.valid {
				t.Errorf("start accepts: %v, config check accepts: %v; want %v for both", start, check, tc.valid)
			}
			if want := tc.valid && !tc.reloadOnly; reload != want {
				t.Errorf("reload accepts: %v (%v; pending %v), want %v", reload, reloadErr, r.Status().RestartPending, want)
			}
		})
	}
}

// writeCA writes a CA certificate to dir/name with mode and returns its
// path.
func writeCA(t *testing.T, dir, name string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, testpki.NewCA(t, "CA "+name).PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	chmodFile(t, p, mode)
	return p
}

// chmodFile sets p's mode, and gives a directory its owner's bits back
// for t.TempDir's removal.
func chmodFile(t *testing.T, p string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(p, 0o700) })
}
