package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmesh/segmesh/internal/testpki"
)

// firstDaySite writes a valid configuration's files (trust store, server
// certificate and key) into dir and returns config.json's JSON object.
func firstDaySite(t *testing.T, dir string) map[string]any {
	t.Helper()
	ca := testpki.NewCA(t, "First Day CA")
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), ca.PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	ca.Server(t, []string{"mail.corp.test"}).WriteFiles(t, dir, "edge")
	ca.Server(t, []string{"other.corp.test"}).WriteFiles(t, dir, "other")
	return map[string]any{
		"clientCertTrustStorePath": "ca.pem",
		"requireClientCertificate": true,
		"kcd": map[string]any{
			"enabled": true, "targetSPN": "HTTP/mail.corp.test", "serviceAccountUserName": "svc_seg",
			"serviceAccountPassword": "enc:v1:placeholder-replaced-below",
			"domains":                []any{map[string]any{"domain": "CORP.TEST", "domainController": "dc1.corp.test"}},
		},
		"customGatewaySettings": map[string]any{
			"cert.mapping.enabled":              "true",
			"cert.mapping.ldap.url":             "ldaps://dc1.corp.test:3269",
			"cert.mapping.ldap.user":            "CN=svc_seg,CN=Users,DC=corp,DC=test",
			"enable.cert.revocation.validation": "true",
			"remote.crl.distribution.http.uris": "http://pki.corp.test/CertEnroll/issuing.crl",
		},
		"segmesh": map[string]any{
			"edge": map[string]any{"listen": "127.0.0.1:0", "serverCertFile": "edge.pem", "serverKeyFile": "edge.key",
				"exchangeUrls": []any{"https://mail.corp.test"}},
			"admin": map[string]any{"listen": "127.0.0.1:0"},
		},
	}
}

// setPath sets a dotted path ("kcd.serviceAccountPassword",
// "customGatewaySettings/cert.mapping.ldap.url" with / before a dotted key).
func setPath(m map[string]any, path string, v any) {
	parts := strings.Split(path, "/")
	if len(parts) == 1 {
		parts = strings.Split(path, ".")
	} else {
		parts = append(strings.Split(parts[0], "."), parts[1])
	}
	for _, p := range parts[:len(parts)-1] {
		m = m[p].(map[string]any)
	}
	if v == nil {
		delete(m, parts[len(parts)-1])
		return
	}
	m[parts[len(parts)-1]] = v
}

// TestFirstDayMistakes feeds the mistakes a SEG admin makes on the first day
// (issue 27 items 1 and 2) through `config check` and, for errors, `run`:
// check refuses what run would refuse, with the same key and words, and
// warns (failing under --strict) about what would silently misbehave.
func TestFirstDayMistakes(t *testing.T) {
	t.Setenv("SEGMESH_CONFIG_KEY", "")
	t.Setenv("SEGMESH_CONFIG_KEY_FILE", "")
	type verdict int
	const (
		isError verdict = iota
		isWarning
	)
	cases := []struct {
		name    string
		edit    func(m map[string]any)
		raw     func(doc []byte) []byte // the file's bytes instead of a JSON edit
		verdict verdict
		key     string
		words   []string // in the problem's message or fix
		absent  []string // in none of the output
		count   int      // exact number of errors when > 0
	}{
		{name: "server key of another certificate", edit: func(m map[string]any) { setPath(m, "segmesh.edge.serverKeyFile", "other.key") },
			verdict: isError, key: "segmesh.edge.serverKeyFile", words: []string{"does not belong", "serverCertFile"}},
		{name: "server certificate missing", edit: func(m map[string]any) { setPath(m, "segmesh.edge.serverCertFile", "missing.pem") },
			verdict: isError, key: "segmesh.edge.serverCertFile", words: []string{"missing.pem"}},
		{name: "no Exchange URL", edit: func(m map[string]any) { setPath(m, "segmesh.edge.exchangeUrls", nil) },
			verdict: isError, key: "segmesh.edge.exchangeUrls", words: []string{"https://", "503"}},
		{name: "Exchange URL with the ActiveSync path", edit: func(m map[string]any) {
			setPath(m, "segmesh.edge.exchangeUrls", []any{"https://mail.corp.test/Microsoft-Server-ActiveSync"})
		}, verdict: isError, key: "segmesh.edge.exchangeUrls", words: []string{"https://mail.corp.test", "base URL"}},
		{name: "ldaps on the plain Global Catalog port", edit: func(m map[string]any) {
			setPath(m, "customGatewaySettings/cert.mapping.ldap.url", "ldaps://dc1.corp.test:3268")
		}, verdict: isError, key: "cert.mapping.ldap.url", words: []string{"3269"}},
		{name: "CRL URLs separated by a semicolon", edit: func(m map[string]any) {
			setPath(m, "customGatewaySettings/remote.crl.distribution.http.uris", "http://pki.corp.test/a.crl;http://pki.corp.test/b.crl")
		}, verdict: isError, key: "remote.crl.distribution.http.uris", words: []string{"comma"}},
		{name: "the Microsoft CA's LDAP CDP is one problem, not one per DN part", edit: func(m map[string]any) {
			setPath(m, "customGatewaySettings/remote.crl.distribution.http.uris",
				"ldap:///CN=Corp Issuing CA,CN=PKI01,CN=CDP,CN=Public Key Services,CN=Services,CN=Configuration,DC=corp,DC=test?certificateRevocationList?base?objectClass=cRLDistributionPoint")
		}, verdict: isError, key: "remote.crl.distribution.http.uris", words: []string{"LDAP", "HTTP", "Web Enrollment"}, count: 1},
		{name: "duplicate key", raw: func(doc []byte) []byte {
			return []byte(strings.Replace(string(doc), `"requireClientCertificate": true,`, `"requireClientCertificate": true, "requireClientCertificate": false,`, 1))
		}, verdict: isError, key: "requireClientCertificate", words: []string{"twice", "last"}},
		{name: "upper-case .PLAINTEXT suffix", edit: func(m map[string]any) { setPath(m, "kcd.serviceAccountPassword", "Secret-1.PLAINTEXT") },
			verdict: isError, key: "kcd.serviceAccountPassword", words: []string{".plaintext", "lower case"}, absent: []string{"Secret-1"}},
		{name: "UTF-8 byte order mark", raw: func(doc []byte) []byte { return append([]byte{0xEF, 0xBB, 0xBF}, doc...) },
			verdict: isError, key: "(file)", words: []string{"byte order mark", "UTF-8"}, absent: []string{"missing comma"}},
		{name: "Notepad's UTF-16", raw: func(doc []byte) []byte {
			out := []byte{0xFF, 0xFE}
			for _, b := range doc {
				out = append(out, b, 0)
			}
			return out
		}, verdict: isError, key: "(file)", words: []string{"UTF-16", "UTF-8"}, absent: []string{"missing comma"}},
		{name: "a // comment", raw: func(doc []byte) []byte {
			return []byte(strings.Replace(string(doc), "{", "{\n  // the SEG settings\n", 1))
		}, verdict: isError, key: "(file)", words: []string{"comments"}, absent: []string{"missing comma"}},
		{name: "exchangeUrls written as a string", edit: func(m map[string]any) { setPath(m, "segmesh.edge.exchangeUrls", "https://mail.corp.test") },
			verdict: isError, key: "segmesh.edge.exchangeUrls", words: []string{`["`, "list"}, absent: []string{"[]string"}},
		{name: "a Windows certificate store as the trust store", edit: func(m map[string]any) { setPath(m, "clientCertTrustStorePath", `Cert:\LocalMachine\Root`) },
			verdict: isError, key: "clientCertTrustStorePath", words: []string{"Windows certificate store", "PEM"}},
		{name: "a Windows path outside SEG's layout", edit: func(m map[string]any) { setPath(m, "clientCertTrustStorePath", `C:\SEG\config\ssl-certs\ca.pem`) },
			verdict: isError, key: "clientCertTrustStorePath", words: []string{"Windows path", "/"}},
		{name: "config init's placeholder domain controller", edit: func(m map[string]any) {
			setPath(m, "kcd.domains", []any{map[string]any{"domain": "CORP.EXAMPLE", "domainController": "dc1.corp.example"}})
		}, verdict: isWarning, key: "kcd.domains[0].domainController", words: []string{"placeholder", "config init"}},
		{name: "config init's placeholder password", edit: func(m map[string]any) { setPath(m, "kcd.serviceAccountPassword", "CHANGE-ME.plaintext") },
			verdict: isWarning, key: "kcd.serviceAccountPassword", words: []string{"placeholder"}},
		{name: "trailing space in the service account", edit: func(m map[string]any) { setPath(m, "kcd.serviceAccountUserName", "svc_seg ") },
			verdict: isWarning, key: "kcd.serviceAccountUserName", words: []string{"space"}},
		{name: "trailing space in a clear password", edit: func(m map[string]any) { setPath(m, "kcd.serviceAccountPassword", "Secret-2 ") },
			verdict: isWarning, key: "kcd.serviceAccountPassword", words: []string{"space"}, absent: []string{"Secret-2"}},
		{name: "a password in clear (or a blob copied from a SEG box)", edit: func(m map[string]any) { setPath(m, "kcd.serviceAccountPassword", "Secret-3") },
			verdict: isWarning, key: "kcd.serviceAccountPassword", words: []string{".plaintext", "SEG"}, absent: []string{"Secret-3"}},
		{name: "a UPN as the LDAP bind user gets a DN from its own suffix", edit: func(m map[string]any) {
			setPath(m, "customGatewaySettings/cert.mapping.ldap.user", "svc_seg@corp.test")
		}, verdict: isError, key: "cert.mapping.ldap.user", words: []string{"CN=svc_seg,CN=Users,DC=corp,DC=test"}, absent: []string{"CN=svc_seg@corp.test"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			m := firstDaySite(t, dir)
			// A clear password would itself be a warning: start from .plaintext.
			setPath(m, "kcd.serviceAccountPassword", "Base-Secret-9.plaintext")
			if tc.edit != nil {
				tc.edit(m)
			}
			doc, err := json.MarshalIndent(m, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			if tc.raw != nil {
				doc = tc.raw(doc)
			}
			p := filepath.Join(dir, "config.json")
			if err := os.WriteFile(p, doc, 0o600); err != nil {
				t.Fatal(err)
			}
			code, out, errOut := run(t, "config", "check", "--json", p)
			var rep checkJSON
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("config check --json: %v\n%s\n%s", err, out, errOut)
			}
			want := map[verdict]string{isError: "error", isWarning: "warning"}[tc.verdict]
			// One problem of that severity on that key says every word.
			var candidates []string
			found := false
			for _, p := range rep.Problems {
				if p.Key != tc.key || p.Severity != want {
					continue
				}
				text := p.Message + " " + p.Fix
				candidates = append(candidates, text)
				all := true
				for _, w := range tc.words {
					all = all && strings.Contains(text, w)
				}
				found = found || all
			}
			if !found {
				t.Fatalf("no %s for %s saying %q; candidates %q; all problems: %+v", want, tc.key, tc.words, candidates, rep.Problems)
			}
			for _, a := range tc.absent {
				if strings.Contains(out+errOut, a) {
					t.Errorf("output holds %q:\n%s", a, out)
				}
			}
			if tc.count > 0 {
				n := 0
				for _, p := range rep.Problems {
					if p.Severity == "error" {
						n++
					}
				}
				if n != tc.count {
					t.Errorf("%d errors, want %d: %+v", n, tc.count, rep.Problems)
				}
			}
			switch tc.verdict {
			case isError:
				if code != 1 || rep.OK {
					t.Fatalf("config check exit %d ok=%v, want 1 and false", code, rep.OK)
				}
				// run refuses it too, naming the same key.
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				var o, e strings.Builder
				if rc := Main(ctx, []string{"run", "--config", p, "--roles", "all"}, &o, &e); rc != 1 || !strings.Contains(e.String(), tc.key) {
					t.Fatalf("run: exit %d, stderr lacks %s:\n%s", rc, tc.key, e.String())
				}
			case isWarning:
				if code != 0 || !rep.OK {
					t.Fatalf("config check exit %d ok=%v, want 0: a warning alone passes", code, rep.OK)
				}
				if code, _, _ := run(t, "config", "check", "--strict", "-q", p); code != 1 {
					t.Fatalf("config check --strict exit %d, want 1 on a warning", code)
				}
			}
		})
	}
}

// checkJSON is `config check --json`'s output.
type checkJSON struct {
	Config   string         `json:"config"`
	OK       bool           `json:"ok"`
	Problems []checkProblem `json:"problems"`
}

type checkProblem struct {
	Severity string `json:"severity"`
	Key      string `json:"key"`
	Value    string `json:"value"`
	Message  string `json:"message"`
	Fix      string `json:"fix"`
}
