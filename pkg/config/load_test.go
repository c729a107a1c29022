package config

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// base is a valid KCD configuration the rule tests modify.
const base = `{
  "clientCertTrustStorePath": "config/ssl-certs/CA01.pem, config/ssl-certs/CA02.pem",
  "clientCertTrustStorePasscode": "",
  "requireClientCertificate": true,
  "kcd": {
    "enabled": true,
    "targetSPN": "HTTP/exchange.lab.test",
    "serviceAccountUserName": "svc_seg",
    "serviceAccountPassword": "Passw0rd!",
    "domains": [{"domain": "LAB.TEST", "domainController": "dc1.lab.test"}]
  },
  "customGatewaySettings": {
    "cert.mapping.enabled": "true",
    "cert.mapping.ldap.url": "ldaps://dc1.lab.test:3269",
    "cert.mapping.ldap.user": "CN=svc_seg,CN=Users,DC=lab,DC=test",
    "enable.cert.revocation.validation": true,
    "remote.crl.distribution.http.uris": "http://127.0.0.4/root.crl, http://127.0.0.4/int.crl"
  },
  "segmesh": {
    "edge": {"serverCertFile": "edge.pem", "serverKeyFile": "edge.key", "exchangeUrls": ["https://exchange.lab.test"]}
  }
}`

// edit applies a JSON merge-ish modification: path "a.b" set to v (nil deletes).
func edit(t testing.TB, doc string, sets map[string]any) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(doc), &m); err != nil {
		t.Fatal(err)
	}
	for path, v := range sets {
		parts := strings.Split(path, "/")
		cur := m
		for _, p := range parts[:len(parts)-1] {
			next, ok := cur[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				cur[p] = next
			}
			cur = next
		}
		if v == nil {
			delete(cur, parts[len(parts)-1])
		} else {
			cur[parts[len(parts)-1]] = v
		}
	}
	out, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func parse(t testing.TB, doc string) (*Config, *Report, error) {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "config.json")
	if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return Load(p)
}

func TestBaseConfigIsValid(t *testing.T) {
	c, r, err := parse(t, base)
	if err != nil {
		t.Fatalf("base config: %v", err)
	}
	if !c.MappingHonoured() || !c.RevocationHonoured() {
		t.Fatal("mapping and revocation should be honoured with KCD on")
	}
	if got := c.Gateway.CRLURIs; len(got) != 2 || got[1] != "http://127.0.0.4/int.crl" {
		t.Fatalf("CRL URIs = %q", got)
	}
	if c.Gateway.CRLFetchIntervalMinutes != 1440 || !c.Gateway.FailHardOnCRLDownload {
		t.Fatalf("SEG defaults not applied: %+v", c.Gateway)
	}
	files, kind := c.TrustStoreFiles()
	if kind != TrustStorePEM || len(files) != 2 || files[0] != filepath.Join(c.BaseDir, "config/ssl-certs/CA01.pem") {
		t.Fatalf("trust files = %v, %v", files, kind)
	}
	if len(r.Errors()) != 0 {
		t.Fatalf("errors: %v", r.Errors())
	}
}

func TestValidationRules(t *testing.T) {
	tests := []struct {
		name     string
		sets     map[string]any
		sev      Severity
		key      string
		contains string
	}{
		{"PEM and PFX together", map[string]any{"clientCertTrustStorePath": "a.pem, b.pfx", "clientCertTrustStorePasscode": "x"},
			SeverityError, "clientCertTrustStorePath", "names both PEM and PFX files"},
		{"two PFX", map[string]any{"clientCertTrustStorePath": "a.pfx,b.p12", "clientCertTrustStorePasscode": "x"},
			SeverityError, "clientCertTrustStorePath", "more than one PFX"},
		{"PFX without passcode", map[string]any{"clientCertTrustStorePath": "a.pfx"},
			SeverityError, "clientCertTrustStorePasscode", "needs its passcode"},
		{"unknown trust file type", map[string]any{"clientCertTrustStorePath": "a.der"},
			SeverityError, "clientCertTrustStorePath", "neither a PEM"},
		{"no trust with KCD", map[string]any{"clientCertTrustStorePath": ""},
			SeverityError, "clientCertTrustStorePath", "no trust for client certificates"},
		{"console chain ignored with local trust", map[string]any{"clientCertificateChain": "chain.pem"},
			SeverityIgnored, "clientCertificateChain", "local trust takes precedence"},
		{"domain lower case", map[string]any{"kcd/domains": []any{map[string]any{"domain": "lab.test", "domainController": "dc1.lab.test"}}},
			SeverityError, "kcd.domains[0].domain", `write "LAB.TEST"`},
		{"DC short name", map[string]any{"kcd/domains": []any{map[string]any{"domain": "LAB.TEST", "domainController": "dc1"}}},
			SeverityError, "kcd.domains[0].domainController", "fully qualified"},
		{"DC is an IP", map[string]any{"kcd/domains": []any{map[string]any{"domain": "LAB.TEST", "domainController": "10.0.0.1"}}},
			SeverityError, "kcd.domains[0].domainController", "IP address"},
		{"DC without domain", map[string]any{"kcd/domains": []any{map[string]any{"domainController": "dc1.lab.test"}}},
			SeverityError, "kcd.domains[0].domain", "without its domain"},
		{"no domains", map[string]any{"kcd/domains": []any{}},
			SeverityError, "kcd.domains", "no domain / domain controller pair"},
		{"SPN without HTTP", map[string]any{"kcd/targetSPN": "exchange.lab.test"},
			SeverityError, "kcd.targetSPN", "not of the form HTTP/{exchangeName}"},
		{"SPN other class", map[string]any{"kcd/targetSPN": "host/exchange.lab.test"},
			SeverityError, "kcd.targetSPN", "service class must be HTTP"},
		{"SPN with realm", map[string]any{"kcd/targetSPN": "HTTP/exchange.lab.test@LAB.TEST"},
			SeverityError, "kcd.targetSPN", "no realm"},
		{"SPN empty", map[string]any{"kcd/targetSPN": ""},
			SeverityError, "kcd.targetSPN", "no target SPN"},
		{"no service account", map[string]any{"kcd/serviceAccountUserName": ""},
			SeverityError, "kcd.serviceAccountUserName", "no service account"},
		{"computer account", map[string]any{"kcd/serviceAccountUserName": "SEG01$"},
			SeverityError, "kcd.serviceAccountUserName", "computer account"},
		{"no password", map[string]any{"kcd/serviceAccountPassword": ""},
			SeverityError, "kcd.serviceAccountPassword", "password is empty"},
		{"interval zero", map[string]any{"customGatewaySettings/remote.crl.fetch.interval.in.minutes": 0},
			SeverityError, KeyCRLFetchIntervalMinutes, "at least 1 minute"},
		{"interval negative string", map[string]any{"customGatewaySettings/remote.crl.fetch.interval.in.minutes": "-5"},
			SeverityError, KeyCRLFetchIntervalMinutes, "at least 1 minute"},
		{"interval not a number", map[string]any{"customGatewaySettings/remote.crl.fetch.interval.in.minutes": "daily"},
			SeverityError, KeyCRLFetchIntervalMinutes, "not a whole number"},
		{"CDP not http", map[string]any{"customGatewaySettings/remote.crl.distribution.http.uris": "ftp://ca/x.crl"},
			SeverityError, KeyCRLURIs, "not an http(s) URL"},
		{"CDP over LDAP", map[string]any{"customGatewaySettings/remote.crl.distribution.http.uris": "ldap:///CN=x,DC=lab?certificateRevocationList"},
			SeverityError, KeyCRLURIs, "an LDAP CDP (AD CS's default) is not supported"},
		{"CDP ldap with host", map[string]any{"customGatewaySettings/remote.crl.distribution.http.uris": "ldap://dc1.lab.test/CN=x"},
			SeverityError, KeyCRLURIs, "over HTTP only"},
		{"revocation without CDPs", map[string]any{"customGatewaySettings/remote.crl.distribution.http.uris": ""},
			SeverityError, KeyCRLURIs, "no distribution point"},
		{"mapping bad URL", map[string]any{"customGatewaySettings/cert.mapping.ldap.url": "https://dc1.lab.test"},
			SeverityError, KeyCertMappingLDAPURL, "not an ldap:// or ldaps://"},
		{"mapping plain ldap warns", map[string]any{"customGatewaySettings/cert.mapping.ldap.url": "ldap://dc1.lab.test:3268"},
			SeverityWarning, KeyCertMappingLDAPURL, "in clear"},
		{"mapping user not DN", map[string]any{"customGatewaySettings/cert.mapping.ldap.user": "svc_seg"},
			SeverityError, KeyCertMappingLDAPUser, "not a distinguished name"},
		{"mapping bool garbage", map[string]any{"customGatewaySettings/cert.mapping.enabled": "yes please"},
			SeverityError, KeyCertMappingEnabled, "not a boolean"},
		{"mapping ignored with KCD off", map[string]any{"kcd/enabled": false},
			SeverityIgnored, KeyCertMappingEnabled, "considered false when KCD"},
		{"revocation ignored without KCD or RCC", map[string]any{"kcd/enabled": false, "requireClientCertificate": false},
			SeverityIgnored, KeyRevocationEnabled, "only when KCD or Require Client Certificate"},
		{"unknown gateway key", map[string]any{"customGatewaySettings/cert.mapping.ldap.basdn": "DC=lab"},
			SeverityError, "cert.mapping.ldap.basdn", `did you mean "cert.mapping.ldap.basedn"?`},
		{"unknown top key", map[string]any{"clientCertTrustStorePass": "x"},
			SeverityError, "clientCertTrustStorePass", `did you mean "clientCertTrustStorePath"?`},
		{"unknown nested key", map[string]any{"kcd/targetSpn": "HTTP/x.lab.test"},
			SeverityError, "kcd.targetSpn", `did you mean "kcd.targetSPN"?`},
		{"unknown key in domains", map[string]any{"kcd/domains": []any{map[string]any{"domain": "LAB.TEST", "domainControler": "dc1.lab.test"}}},
			SeverityError, "kcd.domains[0].domainControler", `did you mean "kcd.domains[0].domainController"?`},
		{"edge PEM and PFX", map[string]any{"segmesh/edge/serverPfxFile": "edge.pfx"},
			SeverityError, "segmesh.edge.serverPfxFile", "both a PEM"},
		{"exchange URL bad", map[string]any{"segmesh/edge/exchangeUrls": []any{"exchange.lab.test"}},
			SeverityError, "segmesh.edge.exchangeUrls[0]", "not an http(s) URL"},
		{"exchange over http with KCD", map[string]any{"segmesh/edge/exchangeUrls": []any{"http://exchange.lab.test"}},
			SeverityWarning, "segmesh.edge.exchangeUrls[0]", "Extended Protection"},
		{"drain grace negative", map[string]any{"segmesh/edge/drainGraceSeconds": -1},
			SeverityError, "segmesh.edge.drainGraceSeconds", "between 0 and 20"},
		{"drain grace eats the drain", map[string]any{"segmesh/edge/drainGraceSeconds": 25},
			SeverityError, "segmesh.edge.drainGraceSeconds", "the whole stop is bounded by the 30 s drain"},
		{"drain spread negative", map[string]any{"segmesh/edge/drainSpreadMillis": -1},
			SeverityError, "segmesh.edge.drainSpreadMillis", "between 0 and 5000"},
		{"drain spread eats the drain", map[string]any{"segmesh/edge/drainSpreadMillis": 5001},
			SeverityError, "segmesh.edge.drainSpreadMillis", "part of the 30 s drain"},
		{"unknown HTTP/1.1 engine", map[string]any{"segmesh/edge/http1Engine": "fast"},
			SeverityError, "segmesh.edge.http1Engine", "unknown HTTP/1.1 engine"},
		{"negative relay connection cap", map[string]any{"segmesh/edge/relayMaxConnsPerHost": -1},
			SeverityError, "segmesh.edge.relayMaxConnsPerHost", "must be between 0 (no cap) and 16384"},
		{"relay connection cap beyond the local ports", map[string]any{"segmesh/edge/relayMaxConnsPerHost": 70000},
			SeverityError, "segmesh.edge.relayMaxConnsPerHost", "must be between 0 (no cap) and 16384"},
		{"plain-HTTP Exchange warns: authenticators in clear", map[string]any{"segmesh/edge/exchangeUrls": []any{"https://exchange.lab.test", "http://exchange2.lab.test"}},
			SeverityWarning, "segmesh.edge.exchangeUrls[1]", "mail and Kerberos authenticator cross the network to Exchange in clear"},
		{"plain-HTTP Exchange warns without KCD", map[string]any{"kcd/enabled": false, "segmesh/edge/exchangeUrls": []any{"http://exchange.lab.test"}},
			SeverityWarning, "segmesh.edge.exchangeUrls[0]", "mail crosses the network to Exchange in clear"},
		{"admin port open beyond the host", map[string]any{"segmesh/admin/listen": ":9090", "segmesh/admin/showPersonalData": true},
			SeverityWarning, "segmesh.admin.listen", "UPNs, certificate subjects and serials are open to whoever reaches it"},
		{"listen bad", map[string]any{"segmesh/edge/listen": "8443"},
			SeverityError, "segmesh.edge.listen", "not a host:port"},
		{"grpc mTLS incomplete", map[string]any{"segmesh/grpc/certFile": "edge.pem"},
			SeverityError, "segmesh.grpc.certFile", "together"},
		{"allowed peers without certs", map[string]any{"segmesh/grpc/listen": "127.0.0.1:9443", "segmesh/grpc/allowedPeers": []any{"spiffe://x/edge"}},
			SeverityIgnored, "segmesh.grpc.allowedPeers", "no certificate"},
		{"grpc plaintext on every interface", map[string]any{"segmesh/grpc/listen": ":9443"},
			SeverityError, "segmesh.grpc.listen", "any user's ticket and session key"},
		{"grpc plaintext on a pod address", map[string]any{"segmesh/grpc/listen": "10.0.0.7:9443"},
			SeverityError, "segmesh.grpc.listen", "without TLS on an address other than loopback"},
		{"grpc plaintext on loopback warns", map[string]any{"segmesh/grpc/listen": "127.0.0.1:9443"},
			SeverityWarning, "segmesh.grpc.listen", "any local process"},
		{"grpc mTLS without allowed peers", map[string]any{"segmesh/grpc/listen": ":9443", "segmesh/grpc/certFile": "a.pem", "segmesh/grpc/keyFile": "a.key", "segmesh/grpc/caFile": "ca.pem"},
			SeverityError, "segmesh.grpc.allowedPeers", "no caller identity is allowed"},
		{"grpc mesh without allowed peers", map[string]any{"segmesh/grpc/listen": ":9443", "segmesh/grpc/meshProvidesMtls": true},
			SeverityError, "segmesh.grpc.allowedPeers", "no caller identity is allowed"},
		{"grpc mesh with own mTLS", map[string]any{"segmesh/grpc/listen": ":9443", "segmesh/grpc/meshProvidesMtls": true, "segmesh/grpc/allowedPeers": []any{"spiffe://x/edge"},
			"segmesh/grpc/certFile": "a.pem", "segmesh/grpc/keyFile": "a.key", "segmesh/grpc/caFile": "ca.pem"},
			SeverityIgnored, "segmesh.grpc.meshProvidesMtls", "not by the mesh's header"},
		{"plaintext secret warns", map[string]any{"kcd/serviceAccountPassword": "Passw0rd!.plaintext"},
			SeverityWarning, "kcd.serviceAccountPassword", "encrypts it and rewrites config.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, r, err := parse(t, edit(t, base, tt.sets))
			var found *Problem
			for i, p := range r.Problems {
				if p.Key == tt.key && p.Severity == tt.sev && strings.Contains(p.String(), tt.contains) {
					found = &r.Problems[i]
				}
			}
			if found == nil {
				t.Fatalf("no %s on %s containing %q; got:\n%v", tt.sev, tt.key, tt.contains, r.Problems)
			}
			if found.Fix == "" && tt.sev == SeverityError {
				t.Errorf("error without a fix: %s", found)
			}
			var ce *Error
			if tt.sev == SeverityError {
				if !errors.As(err, &ce) || !strings.Contains(err.Error(), tt.key) {
					t.Fatalf("Load error = %v, want *Error naming %s", err, tt.key)
				}
			} else if err != nil {
				t.Fatalf("a %s stopped the load: %v", tt.sev, err)
			}
		})
	}
}

func TestAllProblemsReportedAtOnce(t *testing.T) {
	doc := edit(t, base, map[string]any{
		"clientCertTrustStorePath": "a.pem,b.pfx",
		"kcd/targetSPN":            "exchange",
		"kcd/domains":              []any{map[string]any{"domain": "lab.test", "domainController": "dc1"}},
	})
	_, _, err := parse(t, doc)
	var ce *Error
	if !errors.As(err, &ce) || len(ce.Problems) < 4 {
		t.Fatalf("want at least 4 problems at once, got %v", err)
	}
}

func TestMalformedJSONNamesLineAndColumn(t *testing.T) {
	tests := []struct {
		name, doc, want string
	}{
		{"missing comma", "{\n  \"requireClientCertificate\": true\n  \"kcd\": {}\n}", "line 3, column 3"},
		{"truncated", "{\n  \"kcd\": {\n", "line 3, column 1"},
		{"wrong type", "{\n  \"requireClientCertificate\": \"yes\"\n}", "line 2, column"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := parse(t, tt.doc)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestDefaultsAndEmptyFile(t *testing.T) {
	c, r, err := parse(t, `{}`)
	if err != nil {
		t.Fatalf("empty config: %v", err)
	}
	if c.Segmesh.Admin.Listen == "" || c.Gateway.CRLFetchIntervalMinutes != 1440 {
		t.Fatalf("defaults missing: %+v", c.Segmesh.Admin)
	}
	if len(r.Warnings()) == 0 {
		t.Fatal("an empty config should warn about the missing server certificate and upstream")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(base))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"kcd":{"domains":[{"domain":"a"}]}}`))
	f.Add([]byte(`{"customGatewaySettings":{"remote.crl.fetch.interval.in.minutes":1.5}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, r, err := Parse(filepath.Join(t.TempDir(), "config.json"), data)
		if err == nil && c == nil {
			t.Fatal("nil config without error")
		}
		if err != nil && (r == nil || len(r.Errors()) == 0) {
			t.Fatalf("error %v without a reported problem", err)
		}
	})
}

// TestSEGInstallLayout: a config.json copied from a SEG box sits in
// <install>/config and names its files from <install> (config/ssl-certs/...).
func TestSEGInstallLayout(t *testing.T) {
	install := t.TempDir()
	tests := []struct {
		name       string
		dir        string // folder of config.json, under install
		installDir string // segmesh.installDir, "" for none
		path       string
		want       string // under install
	}{
		{"SEG layout, config/ path", "config", "", "config/ssl-certs/CA01.pem", "config/ssl-certs/CA01.pem"},
		{"SEG layout, Windows separators", "config", "", `config\ssl-certs\CA01.pem`, "config/ssl-certs/CA01.pem"},
		{"SEG layout, other relative path", "config", "", "edge.pem", "config/edge.pem"},
		{"not a config folder", "etc", "", "config/ssl-certs/CA01.pem", "etc/config/ssl-certs/CA01.pem"},
		{"installDir set wins", "config", install, "config/ssl-certs/CA01.pem", "config/ssl-certs/CA01.pem"},
		{"installDir set, other path", "config", install, "edge.pem", "edge.pem"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Config{BaseDir: filepath.Join(install, tt.dir)}
			c.Segmesh.InstallDir = tt.installDir
			if tt.installDir != "" {
				c.BaseDir = tt.installDir
			}
			if got, want := c.Resolve(tt.path), filepath.Join(install, filepath.FromSlash(tt.want)); got != want {
				t.Fatalf("Resolve(%q) = %q, want %q", tt.path, got, want)
			}
		})
	}

	// Load end to end: the trust store files are found where SEG put them.
	dir := filepath.Join(install, "config")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "config.json")
	if err := os.WriteFile(p, []byte(base), 0o600); err != nil {
		t.Fatal(err)
	}
	c, _, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if !c.SEGLayout() {
		t.Fatal("SEGLayout() = false for <install>/config/config.json")
	}
	files, _ := c.TrustStoreFiles()
	if want := filepath.Join(install, "config", "ssl-certs", "CA01.pem"); len(files) == 0 || files[0] != want {
		t.Fatalf("trust files = %v, want %s first", files, want)
	}
}

// TestGRPCExposureAccepted lists the inter-role listener settings that load
// without an error.
func TestGRPCExposureAccepted(t *testing.T) {
	tests := []struct {
		name string
		sets map[string]any
	}{
		{"no listener", nil},
		{"plaintext on loopback", map[string]any{"segmesh/grpc/listen": "127.0.0.1:0"}},
		{"plaintext on IPv6 loopback", map[string]any{"segmesh/grpc/listen": "[::1]:9443"}},
		{"mTLS with allowed peers", map[string]any{"segmesh/grpc/listen": ":9443", "segmesh/grpc/certFile": "a.pem", "segmesh/grpc/keyFile": "a.key",
			"segmesh/grpc/caFile": "ca.pem", "segmesh/grpc/allowedPeers": []any{"spiffe://x/edge"}}},
		{"mesh with allowed peers", map[string]any{"segmesh/grpc/listen": ":9443", "segmesh/grpc/meshProvidesMtls": true, "segmesh/grpc/allowedPeers": []any{"spiffe://x/edge"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, r, err := parse(t, edit(t, base, tt.sets)); err != nil {
				t.Fatalf("refused: %v (%v)", err, r.Problems)
			}
		})
	}
}
