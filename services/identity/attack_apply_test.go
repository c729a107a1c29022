package identity

import (
	"bytes"
	"context"
	"strings"
	"testing"

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
