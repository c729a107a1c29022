package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Attacker review 2 of the first-day rules (5e7fdce, 8a2e4e6): each test is
// one attempt to make config check pass what it should refuse, or leak.

// TestReviewCRLListDoesNotSwallowASecondURL: splitURLList keeps an LDAP
// CDP's commas, but a scheme-less item after an http URL must not be glued
// onto it ("http://pki/a.crl,pki/b.crl" is a valid URL with a comma in its
// path, so check passed and the CRL role fetched neither).
func TestReviewCRLListDoesNotSwallowASecondURL(t *testing.T) {
	for _, list := range []string{
		"http://127.0.0.4/root.crl, 127.0.0.4/int.crl",
		"http://127.0.0.4/root.crl,pki.lab.test/int.crl",
		"https://127.0.0.4/root.crl, http:/127.0.0.4/int.crl",
	} {
		_, r, err := parse(t, edit(t, base, map[string]any{"customGatewaySettings/" + KeyCRLURIs: list}))
		if err == nil {
			t.Errorf("%q: accepted; CRLURIs would be one URL with a comma", list)
			continue
		}
		found := false
		for _, p := range r.Errors() {
			if p.Key == KeyCRLURIs && !strings.Contains(p.Value, ",") {
				found = true
			}
		}
		if !found {
			t.Errorf("%q: no problem naming the bad item alone: %v", list, err)
		}
	}
	// The AD CS LDAP CDP stays one item (one problem).
	ldap := "ldap:///CN=CA01,CN=dc1,CN=CDP,CN=Public Key Services,CN=Services,CN=Configuration,DC=lab,DC=test?certificateRevocationList?base?objectClass=cRLDistributionPoint, http://127.0.0.4/int.crl"
	if got := splitURLList(ldap); len(got) != 2 || got[1] != "http://127.0.0.4/int.crl" {
		t.Fatalf("LDAP CDP then http: %q", got)
	}
}

// TestReviewDuplicateKeysHiddenByEscapesOrCase: encoding/json matches keys
// case-insensitively and decodes escapes, so "k\u0063d" and "KCD" would
// both land on kcd. Held: the escaped one is a duplicate (Token decodes
// it), the case variants are unknown keys (checkKeys matches exactly).
func TestReviewDuplicateKeysHiddenByEscapesOrCase(t *testing.T) {
	second := `"%s": {"enabled": true, "targetSPN": "HTTP/evil.lab.test", "serviceAccountUserName": "svc_seg", "serviceAccountPassword": "Passw0rd!", "domains": [{"domain": "LAB.TEST", "domainController": "dc1.lab.test"}]}`
	for _, k := range []string{`k\u0063d`, `KCD`, `Kcd`, "\u212Acd", `kcD`} {
		doc := strings.Replace(base, `"segmesh": {`, fmt.Sprintf(second, k)+",\n  \"segmesh\": {", 1)
		_, r, err := parse(t, doc)
		if err == nil {
			t.Errorf("key %q next to kcd: accepted", k)
			continue
		}
		if !strings.Contains(err.Error(), "twice") && !strings.Contains(err.Error(), "unknown key") {
			t.Errorf("key %q: %v (%v)", k, err, r.Errors())
		}
	}
	// Nested: an escaped duplicate inside kcd.
	doc := strings.Replace(base, `"targetSPN": "HTTP/exchange.lab.test",`, `"targetSPN": "HTTP/exchange.lab.test", "t\u0061rgetSPN": "HTTP/evil.lab.test",`, 1)
	if _, _, err := parse(t, doc); err == nil || !strings.Contains(err.Error(), "kcd.targetSPN") {
		t.Errorf("escaped duplicate targetSPN: %v", err)
	}
	// A custom gateway setting written twice, once escaped.
	doc = strings.Replace(base, `"cert.mapping.enabled": "true",`, `"cert.mapping.enabled": "true", "cert.mapping.en\u0061bled": "false",`, 1)
	if _, _, err := parse(t, doc); err == nil || !strings.Contains(err.Error(), "cert.mapping.enabled") {
		t.Errorf("escaped duplicate gateway setting: %v", err)
	}
}

// TestReviewSecretNeverInProblems: whatever mistake surrounds the secret,
// no problem (key, value, message, fix) nor the error names its value.
func TestReviewSecretNeverInProblems(t *testing.T) {
	const s = "Xyzzy-S3cret-4711"
	pw := func(v string) string {
		return strings.Replace(base, `"Passw0rd!"`, v, 1)
	}
	docs := map[string]string{
		"clear":              pw(`"` + s + `"`),
		"plaintext":          pw(`"` + s + `.plaintext"`),
		"PLAINTEXT":          pw(`"` + s + `.PLAINTEXT"`),
		"spaces":             pw(`" ` + s + ` .plaintext"`),
		"number":             pw(`4711`),
		"list":               pw(`["` + s + `"]`),
		"object":             pw(`{"v": "` + s + `"}`),
		"bad enc":            pw(`"enc:v1:` + s + `"`),
		"duplicate":          strings.Replace(pw(`"`+s+`"`), `"serviceAccountUserName": "svc_seg",`, `"serviceAccountPassword": "`+s+`x", "serviceAccountUserName": "svc_seg",`, 1),
		"missing comma":      pw(`"` + s + `" "x"`),
		"unterminated":       pw(`"` + s),
		"comment after":      pw(`"` + s + `" // the password`),
		"passcode":           strings.Replace(base, `"clientCertTrustStorePasscode": ""`, `"clientCertTrustStorePasscode": "`+s+`"`, 1),
		"passcode PLAINTEXT": strings.Replace(base, `"clientCertTrustStorePasscode": ""`, `"clientCertTrustStorePasscode": "`+s+`.Plaintext"`, 1),
	}
	for name, doc := range docs {
		t.Run(name, func(t *testing.T) {
			_, r, err := parse(t, doc)
			if err != nil && strings.Contains(err.Error(), s) {
				t.Errorf("error names the secret: %v", err)
			}
			var e *Error
			if errors.As(err, &e) {
				for _, p := range e.Problems {
					if strings.Contains(p.Key+p.Value+p.Message+p.Fix, s) {
						t.Errorf("problem names the secret: %+v", p)
					}
				}
			}
			if r != nil {
				for _, p := range r.Problems {
					if strings.Contains(p.Key+p.Value+p.Message+p.Fix, s[:8]) {
						t.Errorf("problem names (part of) the secret: %+v", p)
					}
				}
			}
		})
	}
}

// TestReviewSEGLayoutPaths: only config/ (either separator) moves to the
// install directory, and the Windows-path rule exempts exactly what Resolve
// reads: "Config\ssl-certs\CA01.pem" is not moved by Resolve, so it must
// be reported as a Windows path rather than pass check and fail at run.
func TestReviewSEGLayoutPaths(t *testing.T) {
	install := t.TempDir()
	c := &Config{BaseDir: filepath.Join(install, "config")}
	for p, want := range map[string]string{
		"config/../../etc/passwd": filepath.Join(install, "..", "etc", "passwd"), // as a plain relative path would: no new reach
		"configx/a.pem":           filepath.Join(install, "config", "configx", "a.pem"),
		"./config/a.pem":          filepath.Join(install, "config", "config", "a.pem"),
	} {
		if got := c.Resolve(p); got != filepath.Clean(want) {
			t.Errorf("Resolve(%q) = %q, want %q", p, got, want)
		}
	}
	if !windowsPath(c, `Config\ssl-certs\CA01.pem`) {
		t.Errorf(`Config\ssl-certs\CA01.pem is not read by Resolve's SEG rule, so it must be reported as a Windows path`)
	}
	if windowsPath(c, `config\ssl-certs\CA01.pem`) {
		t.Errorf(`config\ssl-certs\CA01.pem is SEG's own path and is read`)
	}
}

// TestReviewHostileInputsDoNotPanic: a table of nasty inputs through Parse.
func TestReviewHostileInputsDoNotPanic(t *testing.T) {
	for _, doc := range []string{
		"", "\xef\xbb\xbf", "\xff\xfe", "\x00", "{", "}", "[]", "null", `"x"`, "{}{}", `{"kcd":`, `{"kcd":{"domains":[{}]}}`,
		`{"kcd":{"domains":null}}`, `{"customGatewaySettings":null}`, `{"customGatewaySettings":{"remote.crl.distribution.http.uris":", , ,"}}`,
		`{"customGatewaySettings":{"remote.crl.distribution.http.uris":"a,b,c"}}`, `{"customGatewaySettings":{"cert.mapping.ldap.user":"@"}}`,
		`{"customGatewaySettings":{"cert.mapping.enabled":true,"cert.mapping.ldap.user":"@@..","cert.mapping.ldap.url":"ldaps://[::1"}}`,
		`{"segmesh":{"edge":{"exchangeUrls":["https://h/%zz","http://[::1]:99999/ews",""]}}}`,
		`{"clientCertTrustStorePath":"C:, \\, cert:, :, config\\"}`, `{"segmesh":{"installDir":"config"}}`,
		"{\"kcd\":{\"serviceAccountPassword\":\".PLAINTEXT\"}}", "{\"kcd\":{\"serviceAccountPassword\":\"\\u0000.plaintext\"}}",
		strings.Repeat("[", 10000), strings.Repeat(`{"a":`, 5000),
	} {
		func() {
			defer func() {
				if v := recover(); v != nil {
					t.Errorf("Parse(%.40q) panicked: %v", doc, v)
				}
			}()
			c, r, err := Parse(filepath.Join(t.TempDir(), "config", "config.json"), []byte(doc))
			if err == nil && c == nil || err != nil && (r == nil || len(r.Errors()) == 0) {
				t.Errorf("Parse(%.40q): config %v, error %v", doc, c != nil, err)
			}
		}()
	}
}

// TestReviewExchangeURLWithAForwardedPathInside: the doubled-path rule
// looked only at the path's end, so Outlook's EWS URL
// (https://mail/EWS/Exchange.asmx) or the Autodiscover file passed check
// and the edge asked Exchange for /EWS/Exchange.asmx/Microsoft-Server-ActiveSync.
func TestReviewExchangeURLWithAForwardedPathInside(t *testing.T) {
	for _, u := range []string{
		"https://exchange.lab.test/EWS/Exchange.asmx",
		"https://exchange.lab.test/autodiscover/autodiscover.xml",
		"https://exchange.lab.test/Microsoft-Server-ActiveSync/",
		"https://exchange.lab.test/Microsoft-Server-ActiveSync%2F",
	} {
		_, r, err := parse(t, edit(t, base, map[string]any{"segmesh/edge/exchangeUrls": []any{u}}))
		found := false
		if err != nil {
			for _, p := range r.Errors() {
				found = found || p.Key == "segmesh.edge.exchangeUrls" && strings.Contains(p.Fix, `"https://exchange.lab.test"`)
			}
		}
		if !found {
			t.Errorf("%s: no error with the base URL: %v", u, err)
		}
	}
	for _, u := range []string{"https://exchange.lab.test", "https://exchange.lab.test/news/", "https://exchange.lab.test/ewsproxy"} {
		if _, _, err := parse(t, edit(t, base, map[string]any{"segmesh/edge/exchangeUrls": []any{u}})); err != nil {
			t.Errorf("%s: refused: %v", u, err)
		}
	}
}

// TestReviewEncryptAndLoadAgreeOnHiddenKeys: config encrypt finds the
// secret by the same decoded key Load reads (an escaped key is encrypted,
// not left in clear), leaves a case variant (which Load refuses as an
// unknown key) alone, and prints no secret in its error on a broken file.
func TestReviewEncryptAndLoadAgreeOnHiddenKeys(t *testing.T) {
	t.Setenv(KeyEnv, "")
	t.Setenv(KeyFileEnv, "")
	const s = "Xyzzy-S3cret-4711"
	dir := t.TempDir()
	doc := strings.Replace(base, `"serviceAccountPassword": "Passw0rd!"`, `"serviceAcc\u006funtPassword": "`+s+`\u002eplaintext"`, 1)
	p := writeConfig(t, dir, doc)
	done, err := EncryptPlaintextSecrets(p, nil)
	if err != nil || len(done) != 1 || done[0] != "kcd.serviceAccountPassword" {
		t.Fatalf("escaped key: %v %v", done, err)
	}
	if data, _ := os.ReadFile(p); strings.Contains(string(data), s) {
		t.Fatalf("secret left in clear:\n%s", data)
	}
	c, _, err := Load(p)
	if err != nil || c.KCD.ServiceAccountPassword.Reveal() != s {
		t.Fatalf("Load after encrypt: %v", err)
	}

	dir = t.TempDir()
	doc = strings.Replace(base, `"serviceAccountPassword": "Passw0rd!"`, `"ServiceAccountPassword": "`+s+`.plaintext"`, 1)
	p = writeConfig(t, dir, doc)
	if done, err := EncryptPlaintextSecrets(p, nil); err != nil || len(done) != 0 {
		t.Fatalf("case variant: %v %v", done, err)
	}
	if _, _, err := Load(p); err == nil || !strings.Contains(err.Error(), "unknown key") || strings.Contains(err.Error(), s) {
		t.Fatalf("Load of the case variant: %v", err)
	}

	for _, broken := range []string{`"` + s + `.plaintext" "x"`, `"` + s + ".plaintext\t\"", `"` + s + `.plaintext`} {
		dir = t.TempDir()
		p = writeConfig(t, dir, strings.Replace(base, `"Passw0rd!"`, broken, 1))
		if _, err := EncryptPlaintextSecrets(p, nil); err == nil || strings.Contains(err.Error(), s[:8]) {
			t.Errorf("broken %q: %v", broken, err)
		}
	}
}

// TestReviewCaseVariantInsideAList: encoding/json would let "Domain" in a
// kcd.domains element override "domain"; checkKeys recurses into the list
// and refuses it as an unknown key (held).
func TestReviewCaseVariantInsideAList(t *testing.T) {
	doc := strings.Replace(base, `{"domain": "LAB.TEST",`, `{"domain": "LAB.TEST", "DOMAIN": "EVIL.TEST",`, 1)
	if _, _, err := parse(t, doc); err == nil || !strings.Contains(err.Error(), "kcd.domains[0].DOMAIN") {
		t.Fatalf("case variant in a list element: %v", err)
	}
}
