//go:build lab

package identity

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"os"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/internal/labenv"
	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/secret"
)

// TestLabMappingURLChange runs the role on the lab's config.json (LDAPS on
// 636) and moves the mapping to the Global Catalog over TLS (3269) of the
// real Samba DC: bob is still mapped by userCertificate, now from the GC,
// with a new generation and no cached answer. A wrong password (Samba's
// own LDAP error 49, then remembered: not bound with again), a port nothing
// answers on and a move to plain LDAP (3268 without StartTLS) are each
// refused, and bob stays mapped.
func TestLabMappingURLChange(t *testing.T) {
	e := labenv.Up(t)
	c := loadLabConfig(t, e)
	svc, cl, err := startService(t, ConfigFrom(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(e.User("bob").Cert)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	bob := block.Bytes
	before, err := mapCert(cl, bob)
	if err != nil || !strings.EqualFold(before.Upn, "bob.smith@lab.test") {
		t.Fatalf("before: %v, %v", before, err)
	}
	with := func(edit func(*config.Config)) *config.Config {
		next := *c
		next.Gateway.CertMappingLDAPURL = e.GCSURL
		if edit != nil {
			edit(&next)
		}
		return &next
	}
	for _, tc := range []struct {
		name, want string
		next       *config.Config
	}{
		{"a wrong password", "Result Code 49", with(func(n *config.Config) { n.KCD.ServiceAccountPassword = secret.New("not-the-password") })},
		// Samba's refusal is remembered: the same password is not bound with
		// again (each failed bind counts towards the account's lockout).
		{"the same wrong password again", "not asked again", with(func(n *config.Config) { n.KCD.ServiceAccountPassword = secret.New("not-the-password") })},
		{"nothing answers", "do not work", with(func(n *config.Config) { n.Gateway.CertMappingLDAPURL = "ldaps://ldap.lab.test:1" })},
		{"plain LDAP after LDAPS", "in clear", with(func(n *config.Config) { n.Gateway.CertMappingLDAPURL = e.GCURL })},
	} {
		if _, err := svc.PrepareConfig(context.Background(), tc.next); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: PrepareConfig = %v, want a refusal with %q", tc.name, err, tc.want)
		}
	}
	commit, err := svc.PrepareConfig(context.Background(), with(nil))
	if err != nil {
		t.Fatalf("move to %s: %v", e.GCSURL, err)
	}
	commit()
	after, err := mapCert(cl, bob)
	if err != nil || !strings.EqualFold(after.Upn, "bob.smith@lab.test") || after.Cached || after.MappingGeneration == before.MappingGeneration {
		t.Fatalf("after the move: %v, %v; want bob from the GC, not cached, under a new generation", after, err)
	}
	if got := svc.statusSection(); !strings.Contains(strings.ToLower(toJSON(t, got)), ":3269") {
		t.Errorf("status %s does not name the GC", toJSON(t, got))
	}
}

func toJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// loadLabConfig loads the lab's config.json as segmesh run does.
func loadLabConfig(t *testing.T, e *labenv.Env) *config.Config {
	t.Helper()
	c, report, err := config.Load(e.SegmeshConfig)
	if err != nil {
		t.Fatalf("load %s: %v", e.SegmeshConfig, err)
	}
	if errs := report.Errors(); len(errs) > 0 {
		t.Fatalf("config errors: %v", errs)
	}
	return c
}
