package config

import (
	"errors"
	"strings"
	"testing"
)

// TestAttackSecretKindUnderAnotherSpelling: 2bdf44a refuses a secret
// written as a number, bool, object or list naming its key, never its
// value. The secrets are found by their exact JSON path, while a JSON
// decoder matches keys whatever their case: a secret written under another
// spelling (ServiceAccountPassword, a duplicate) must neither show its
// value nor be taken as the secret. Attacker review (review2); held.
func TestAttackSecretKindUnderAnotherSpelling(t *testing.T) {
	const digits = "839201"
	for _, tc := range []struct{ name, to, key string }{
		{"number under a capitalised key", `"ServiceAccountPassword": ` + digits, "kcd.ServiceAccountPassword"},
		{"list under a lower-case key", `"serviceaccountpassword": ["` + digits + `"]`, "kcd.serviceaccountpassword"},
		{"plaintext string under a lower-case key", `"serviceaccountpassword": "` + digits + `.plaintext"`, "kcd.serviceaccountpassword"},
		{"a number after the string, same key", `"serviceAccountPassword": "Passw0rd!", "serviceAccountPassword": ` + digits, "kcd.serviceAccountPassword"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := strings.Replace(base, `"serviceAccountPassword": "Passw0rd!"`, tc.to, 1)
			c, _, err := parse(t, doc)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Load = %v (password %q), want a config error", err, func() string {
					if c == nil {
						return ""
					}
					return c.KCD.ServiceAccountPassword.Reveal()
				}())
			}
			if strings.Contains(err.Error(), digits) {
				t.Fatalf("the error shows the value: %v", err)
			}
			if !strings.Contains(err.Error(), tc.key) {
				t.Fatalf("no problem names %s: %v", tc.key, err)
			}
		})
	}
}
