package certmap

import "testing"

// TestBindErrorCredentialsRefused: only the directory's invalid-credentials
// answer is a refusal of the account or password, remembered by the
// identity role's reload so that it is not tried again (lockout); a
// directory wanting TLS, one refusing for lack of rights, and a bind that
// got no answer are not.
func TestBindErrorCredentialsRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		code uint16
		want bool
	}{
		{"invalid credentials (49)", 49, true},
		{"strong authentication required (8)", 8, false},
		{"confidentiality required (13)", 13, false},
		{"insufficient access rights (50)", 50, false},
		{"no answer", 0, false},
	} {
		if got := (&BindError{BindDN: "CN=svc", Code: tc.code}).CredentialsRefused(); got != tc.want {
			t.Errorf("%s: CredentialsRefused = %v, want %v", tc.name, got, tc.want)
		}
	}
}
