package certmap

import (
	"errors"
	"strings"
	"testing"
)

// TestAttackURLErrorHidesThePassword: an LDAP URL written with the
// service account's password in it (ldap://user:password@host) is refused,
// and the refusal, which config check, /status and the log show, names
// the URL without the password, also when the URL does not parse. Attacker
// review (review1): the refusal showed the URL as written.
func TestAttackURLErrorHidesThePassword(t *testing.T) {
	const pw = "S3cret-Pw"
	for _, tc := range []struct{ raw, shown string }{
		{"ldap://svc:" + pw + "@dc1.lab.test", "ldap://svc:xxxxx@dc1.lab.test"},
		{"ldaps://CN=svc:" + pw + "@dc1.lab.test:3269/DC=lab,DC=test", "ldaps://CN=svc:xxxxx@dc1.lab.test:3269/DC=lab,DC=test"},
		{"ldaps://svc:" + pw + "@dc1.lab.test:x/", "ldaps://svc:xxxxx@dc1.lab.test:x/"},
		{"ldap://svc:" + pw + "@dc1 lab.test", "ldap://svc:xxxxx@dc1 lab.test"},
		{"ldap://svc:" + pw + "@", "ldap://svc:xxxxx@"},
		{"ldap://svc@dc1.lab.test", "ldap://svc@dc1.lab.test"},
	} {
		t.Run(tc.shown, func(t *testing.T) {
			_, err := ParseURL(tc.raw)
			ue, ok := errors.AsType[*URLError](err)
			if !ok {
				t.Fatalf("ParseURL(%q) = %v, want a *URLError", tc.raw, err)
			}
			if strings.Contains(err.Error(), pw) || strings.Contains(ue.Reason, pw) || ue.Raw != tc.shown {
				t.Fatalf("refusal %q (Raw %q), want Raw %q and no password", err, ue.Raw, tc.shown)
			}
		})
	}
}
