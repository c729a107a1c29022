package config

import (
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
