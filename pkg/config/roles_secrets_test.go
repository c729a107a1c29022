package config

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestSecretsAreOpenedOnlyForTheRolesThatUseThem: with the key gone, a
// process running only roles that use no encrypted secret loads the file
// (the secrets are withheld, empty, never decrypted); one running a role
// that uses the service account password is refused as before.
func TestSecretsAreOpenedOnlyForTheRolesThatUseThem(t *testing.T) {
	p := encryptedWithoutKey(t)
	cases := []struct {
		roles    []string
		refused  bool
		withheld bool
	}{
		{roles: []string{"edge"}, withheld: true},
		{roles: []string{"crl"}, withheld: true},
		{roles: []string{"crl", "edge"}, withheld: true},
		{roles: []string{"ticket"}, refused: true},
		{roles: []string{"identity"}, refused: true},
		{roles: []string{"edge", "ticket"}, refused: true},
		{roles: nil, refused: true},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.roles, ","), func(t *testing.T) {
			c, _, err := LoadFor(p, tc.roles)
			if tc.refused {
				if err == nil || !strings.Contains(err.Error(), "kcd.serviceAccountPassword") {
					t.Fatalf("err = %v, want the unreadable key named", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !c.KCD.ServiceAccountPassword.IsZero() || c.Withheld("kcd.serviceAccountPassword") != tc.withheld || !c.HasSecret("kcd.serviceAccountPassword") {
				t.Fatalf("password zero=%v withheld=%v has=%v", c.KCD.ServiceAccountPassword.IsZero(), c.Withheld("kcd.serviceAccountPassword"), c.HasSecret("kcd.serviceAccountPassword"))
			}
		})
	}
}

// TestSecretDeclarationsNameTheirRoles: every secret names the roles that
// use it, and the set is what the least-privilege rule says (ticket and
// identity: the service account password; edge and crl: the trust store's
// passcode; edge: its own PFX passcode).
func TestSecretDeclarationsNameTheirRoles(t *testing.T) {
	want := map[string][]string{
		"clientCertTrustStorePasscode":        {"crl", "edge"},
		"kcd.serviceAccountPassword":          {"identity", "ticket"},
		"segmesh.edge.serverPfxPasscode":      {"edge"},
		"segmesh.ticket.armorAccountPassword": {"ticket"},
	}
	got := map[string][]string{}
	for _, d := range Secrets() {
		r := slices.Clone(d.Roles)
		slices.Sort(r)
		got[d.Path] = r
	}
	if len(got) != len(want) {
		t.Fatalf("secrets %v, want %v", got, want)
	}
	for k, v := range want {
		if !slices.Equal(got[k], v) {
			t.Errorf("%s used by %v, want %v", k, got[k], v)
		}
	}
}

// TestEncryptOnlyTheRolesSecrets: with a key of the process
// (SEGMESH_CONFIG_KEY), a process encrypts only the .plaintext secrets of
// the roles it runs (EncryptPlaintextSecretsFor), as processes sharing the
// file may hold other keys; with the file's own key (config.key beside it,
// shared by whoever reads the file) every secret is encrypted, so none
// stays in clear at rest; nil roles (all in one process, and segmesh
// config encrypt) encrypts every one.
func TestEncryptOnlyTheRolesSecrets(t *testing.T) {
	t.Setenv(KeyFileEnv, "")
	doc := strings.Replace(base, `"Passw0rd!"`, `"Passw0rd!.plaintext"`, 1)
	doc = strings.Replace(doc, `"clientCertTrustStorePasscode": ""`, `"clientCertTrustStorePasscode": "Pc.plaintext"`, 1)
	both := []string{"clientCertTrustStorePasscode", "kcd.serviceAccountPassword"}
	const processKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" // base64 of 32 bytes
	for _, tc := range []struct {
		key   string // SEGMESH_CONFIG_KEY; "" for config.key
		roles []string
		want  []string
	}{
		{key: processKey, roles: []string{"edge"}, want: []string{"clientCertTrustStorePasscode"}},
		{key: processKey, roles: []string{"crl"}, want: []string{"clientCertTrustStorePasscode"}},
		{key: processKey, roles: []string{"ticket"}, want: []string{"kcd.serviceAccountPassword"}},
		{key: processKey, roles: []string{"identity", "crl"}, want: both},
		{key: processKey, roles: nil, want: both},
		{roles: []string{"edge"}, want: both},
		{roles: []string{"ticket"}, want: both},
	} {
		t.Run(fmt.Sprintf("%v,process key %v", tc.roles, tc.key != ""), func(t *testing.T) {
			t.Setenv(KeyEnv, tc.key)
			p := writeConfig(t, t.TempDir(), doc)
			done, err := EncryptPlaintextSecretsFor(p, tc.roles, nil)
			slices.Sort(done)
			if err != nil || !slices.Equal(done, tc.want) {
				t.Fatalf("encrypted %v (%v), want %v", done, err, tc.want)
			}
			c, _, err := LoadFor(p, tc.roles)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range tc.want {
				if tc.roles != nil && !usedByAny(k, tc.roles) {
					continue
				}
				if c.Withheld(k) || !c.HasSecret(k) {
					t.Errorf("%s not opened after encryption", k)
				}
			}
		})
	}
}

// usedByAny reports whether the secret at path is used by one of roles.
func usedByAny(path string, roles []string) bool {
	for _, d := range Secrets() {
		if d.Path == path {
			return usedBy(strings.Join(d.Roles, ","), roles)
		}
	}
	return false
}
