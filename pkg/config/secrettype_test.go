package config

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

// TestSecretWrittenAsAnotherType: a secret written as a JSON number, true or
// false, an object or a list (`"serviceAccountPassword": 839201`) is refused
// with a problem that names the key, the line and column of its value, and
// the fix (a string in quotes with the suffix .plaintext), never its value.
// Before, the problem had an empty key and a position inside the secret's
// own bytes (attacker review 2, "left").
func TestSecretWrittenAsAnotherType(t *testing.T) {
	const digits = "839201"
	for _, tc := range []struct {
		name, key, from, to string
		line                int
		kind                string
	}{
		{"password as a number", "kcd.serviceAccountPassword", `"Passw0rd!"`, digits, 9, "a number"},
		{"password as true", "kcd.serviceAccountPassword", `"Passw0rd!"`, `true`, 9, "true or false"},
		{"password as an object", "kcd.serviceAccountPassword", `"Passw0rd!"`, `{"v": "` + digits + `"}`, 9, "an object"},
		{"password as a list", "kcd.serviceAccountPassword", `"Passw0rd!"`, `["` + digits + `"]`, 9, "a list"},
		{"passcode as a number", "clientCertTrustStorePasscode", `"clientCertTrustStorePasscode": ""`, `"clientCertTrustStorePasscode": ` + digits, 3, "a number"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := strings.Replace(base, tc.from, tc.to, 1)
			_, _, err := parse(t, doc)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Load: %v, want a config error", err)
			}
			if strings.Contains(err.Error(), digits) {
				t.Errorf("the error shows the value: %v", err)
			}
			var found bool
			for _, p := range e.Problems {
				if p.Key == "" {
					t.Errorf("a problem with no key: %+v", p)
				}
				if p.Key != tc.key {
					continue
				}
				found = true
				for _, w := range []string{tc.kind, "line " + strconv.Itoa(tc.line) + ",", "a string in quotes"} {
					if !strings.Contains(p.Message, w) {
						t.Errorf("message lacks %q: %+v", w, p)
					}
				}
				if !strings.Contains(p.Fix, ".plaintext") {
					t.Errorf("fix does not say to write it with .plaintext: %+v", p)
				}
			}
			if !found {
				t.Errorf("no problem names %s: %v", tc.key, err)
			}
		})
	}
}
