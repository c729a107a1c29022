package identity

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/internal/testpki"
	"github.com/segmesh/segmesh/pkg/certmap/ldaptest"
	"github.com/segmesh/segmesh/pkg/config"
)

// TestAttackPrepareRefusalHidesThePassword: a reload the identity role
// refuses (the directory refuses the new password, nothing listens at the
// new URL, the new URL needs TLS the reload would drop) says why in an
// error that /status and the log show: neither the new password nor the
// one in use may be in it or in the role's log. Attacker review of 4fba3d6;
// held.
func TestAttackPrepareRefusalHidesThePassword(t *testing.T) {
	const newPassword = "N3w-S3cret-review1!"
	d := newDirectory(t, ldaptest.Options{})
	var logs bytes.Buffer
	svc, _, err := startService(t, testConfig(d), &logs)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		next *config.Config
	}{
		{"the directory refuses the new password", fullConfig(d.srv.URL(""), newPassword, nil)},
		{"nothing listens at the new URL", fullConfig(closedURL(t), newPassword, nil)},
		{"a new base DN the directory does not hold", fullConfig(d.srv.URL("/DC=nowhere,DC=test"), newPassword, nil)},
		{"an LDAP URL carrying the password as user information", fullConfig("ldap://svc:"+newPassword+"@"+d.srv.Addr(), newPassword, nil)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			commit, err := svc.PrepareConfig(context.Background(), tc.next)
			if err == nil {
				commit()
				t.Fatalf("applied, want a refusal")
			}
			for _, pw := range []string{newPassword, password} {
				if strings.Contains(err.Error(), pw) {
					t.Errorf("the refusal shows a password: %v", err)
				}
				if strings.Contains(logs.String(), pw) {
					t.Errorf("the log shows a password:\n%s", logs.String())
				}
			}
		})
	}
}

// TestAttackStrongerTransportKeepsTheCache: mappings read from the
// directory over a transport a reload then strengthens (StartTLS turned on
// after binding in clear, a CA taken out of segmesh.identity.ldapCaFile)
// may have been written by whoever was on that path. The reload that
// strengthens it must not keep them: the next lookup asks the directory
// over the new transport, and the mapping generation changes so that edges
// drop theirs too. Attacker review of 4fba3d6 (the cache was kept: only the
// password, CA, pool or TTLs changed).
func TestAttackStrongerTransportKeepsTheCache(t *testing.T) {
	serverTLS, ca := ldaptest.TLSWithCA(t, "127.0.0.1")
	_, rogue := ldaptest.TLSWithCA(t, "127.0.0.1")
	dir := t.TempDir()
	both := filepath.Join(dir, "with-rogue.pem")
	only := filepath.Join(dir, "dc-ca.pem")
	if err := os.WriteFile(both, append(testpki.PEM(ca), testpki.PEM(rogue)...), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(only, testpki.PEM(ca), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		start     func(*config.Config)
		next      func(*config.Config)
		implicitT bool
	}{
		{"StartTLS turned on after binding in clear", nil,
			func(c *config.Config) { c.Segmesh.Identity.LDAPStartTLS, c.Segmesh.Identity.LDAPCAFile = true, only }, false},
		{"a rogue CA taken out of ldapCaFile", func(c *config.Config) { c.Segmesh.Identity.LDAPCAFile = both },
			func(c *config.Config) { c.Segmesh.Identity.LDAPCAFile = only }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDirectory(t, ldaptest.Options{TLS: serverTLS, Implicit: tc.implicitT})
			// The running settings differ from the reload's in the transport
			// alone.
			svc, cl, err := startService(t, ConfigFrom(fullConfig(d.srv.URL(""), password, tc.start)), nil)
			if err != nil {
				t.Fatal(err)
			}
			first, err := mapCert(cl, d.bob)
			if err != nil || first.Upn != "bob.smith@lab.test" {
				t.Fatalf("before: %v %v", first, err)
			}
			next := fullConfig(d.srv.URL(""), password, tc.next)
			commit, err := svc.PrepareConfig(context.Background(), next)
			if err != nil {
				t.Fatalf("the stronger transport was refused: %v", err)
			}
			commit()
			after, err := mapCert(cl, d.bob)
			if err != nil || after.Upn != "bob.smith@lab.test" {
				t.Fatalf("after: %v %v", after, err)
			}
			if after.Cached || after.MappingGeneration == first.MappingGeneration {
				t.Fatalf("after the reload bob's mapping came from the cache filled over the weaker transport (cached %v, generation %d -> %d): "+
					"answers someone on the old path may have written stay in use for the cache TTL, at the identity role and at every edge",
					after.Cached, first.MappingGeneration, after.MappingGeneration)
			}
		})
	}
}
