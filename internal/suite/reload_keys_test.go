package suite

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/segmesh/segmesh/pkg/config"
)

// TestDiffConfigGatewayKeys: a custom gateway setting is its own change,
// under its dotted name and with its roles, so the mapping URL can be live
// while the revocation switch takes a restart. Before, the whole
// customGatewaySettings map was one key no role could apply.
func TestDiffConfigGatewayKeys(t *testing.T) {
	a := config.Default()
	b := config.Default()
	b.Gateway.CertMappingLDAPURL = "ldaps://dc2.lab.test:3269"
	b.Gateway.CRLURIs = []string{"http://pki.lab.test/new.crl"}
	b.CustomGatewaySettings = map[string]any{"cert.mapping.ldap.url": "ldaps://dc2.lab.test:3269", "some.seg.only.key": "x"}
	got := diffConfig(&a, &b)
	want := map[string][]string{
		"cert.mapping.ldap.url":             {"identity"},
		"remote.crl.distribution.http.uris": {"crl"},
	}
	if len(got) != len(want) {
		t.Fatalf("changes %+v, want the keys of %v", got, want)
	}
	for _, c := range got {
		if roles, ok := want[c.Key]; !ok || !slices.Equal(c.Roles, roles) {
			t.Errorf("change %+v, want one of %v", c, want)
		}
	}
}

// twoRoleApplier is a group whose identity role applies the password live
// and whose ticket role applies nothing, or lists it as well.
type twoRoleApplier struct{ ticketToo bool }

func (a twoRoleApplier) LiveKeys() map[string][]string {
	out := map[string][]string{"identity": {"kcd.serviceAccountPassword"}}
	if a.ticketToo {
		out["ticket"] = []string{"kcd.serviceAccountPassword"}
	}
	return out
}

func (twoRoleApplier) ApplyConfig(context.Context, *config.Config, []string) error { return nil }

// TestIsLiveNeedsEveryRoleThatUsesIt: a setting two roles of the process
// read is live only when both apply it; otherwise one role would keep the
// old value while the reload said nothing.
func TestIsLiveNeedsEveryRoleThatUsesIt(t *testing.T) {
	pw := change{Key: "kcd.serviceAccountPassword", Roles: []string{"ticket", "identity"}}
	for _, tc := range []struct {
		name      string
		roles     []string
		ticketToo bool
		want      bool
	}{
		{"identity alone applies it", []string{"identity"}, false, true},
		{"ticket beside identity does not", []string{"identity", "ticket"}, false, false},
		{"both apply it", []string{"identity", "ticket"}, true, true},
		{"no role of the process uses it", []string{"crl"}, true, false},
	} {
		r := &reloader{roles: tc.roles, group: twoRoleApplier{ticketToo: tc.ticketToo}}
		if got := r.isLive(pw); got != tc.want {
			t.Errorf("%s: isLive = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// chainApplier is a crl role that reads clientCertificateChain live.
type chainApplier struct{ changed [][]string }

func (a *chainApplier) LiveKeys() map[string][]string {
	return map[string][]string{"crl": {"clientCertificateChain"}}
}

func (a *chainApplier) ApplyConfig(_ context.Context, _ *config.Config, changed []string) error {
	a.changed = append(a.changed, changed)
	return nil
}

// TestReloadAppliesAFileRotatedInPlace: a file rewritten under the same
// path is a change of its setting for a role that reads it live (a server
// certificate renewed in place), applied, not passed over.
func TestReloadAppliesAFileRotatedInPlace(t *testing.T) {
	g := &chainApplier{}
	r, path, _, logs := newTestReloader(t, g)
	chain := filepath.Join(filepath.Dir(path), "chain.pem")
	if err := os.WriteFile(chain, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := reloadConfig("info", false, "", "")
	cfg["clientCertificateChain"] = chain
	writeJSON(t, path, cfg)
	if err := r.Reload(context.Background(), "SIGHUP"); err != nil {
		t.Fatalf("Reload: %v\n%s", err, logs)
	}
	if err := os.WriteFile(chain, []byte("two"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.Reload(context.Background(), "file change"); err != nil {
		t.Fatalf("Reload: %v\n%s", err, logs)
	}
	if len(g.changed) != 2 || !slices.Contains(g.changed[1], "clientCertificateChain") {
		t.Fatalf("ApplyConfig saw %v, want the rotated chain as a change at the second reload", g.changed)
	}
	if st := r.Status(); !slices.Contains(st.Applied, "clientCertificateChain") || len(st.RestartPending) != 0 {
		t.Errorf("status applied %v pending %v, want the chain applied and nothing pending", st.Applied, st.RestartPending)
	}
}
