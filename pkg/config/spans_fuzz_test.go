package config

import (
	"encoding/json"
	"testing"
)

// FuzzFindSecretSpans checks the scanner EncryptPlaintextSecrets rewrites
// config.json with (outside input: the operator's file): on any input it
// never panics, and every span it returns is exactly the quoted JSON string
// whose decoded value it reports, so a rewrite replaces only that value;
// a secret that is no string is reported with its kind where it starts.
func FuzzFindSecretSpans(f *testing.F) {
	f.Add([]byte(`{"kcd": {"serviceAccountPassword": "s3cret.plaintext"}, "clientCertTrustStorePasscode" : "a\"b.plaintext"}`))
	f.Add([]byte(`{"segmesh": {"edge": {"serverPfxPasscode": "x"}}, "kcd": [{"serviceAccountPassword": "y"}]}`))
	f.Add([]byte(`{"kcd": {"serviceAccountPassword": 5}}`))
	f.Add([]byte(`{"kcd":{"serviceAccountPassword":"\u00e9\ud83d\ude00"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		spans, err := findSecretSpans(data)
		if err != nil {
			return
		}
		for _, sp := range spans {
			if sp.kind != "" {
				// A value that is no string: start is where it begins.
				if sp.start < 0 || sp.start >= len(data) || !startsKind(data[sp.start], sp.kind) {
					t.Fatalf("%s span of %s at %d does not start that value in %q", sp.kind, sp.path, sp.start, data)
				}
				continue
			}
			if sp.start < 0 || sp.end > len(data) || sp.start >= sp.end {
				t.Fatalf("span %d..%d outside the %d-byte input", sp.start, sp.end, len(data))
			}
			raw := data[sp.start:sp.end]
			var v string
			if err := json.Unmarshal(raw, &v); err != nil {
				t.Fatalf("span %q of %s is not a JSON string: %v", raw, sp.path, err)
			}
			if v != sp.value {
				t.Fatalf("span %q decodes to %q, reported %q", raw, v, sp.value)
			}
		}
	})
}

// startsKind reports whether b can start a JSON value of kind (otherKind's
// words).
func startsKind(b byte, kind string) bool {
	switch kind {
	case "a number":
		return b == '-' || b >= '0' && b <= '9'
	case "true or false":
		return b == 't' || b == 'f'
	case "an object":
		return b == '{'
	case "a list":
		return b == '['
	}
	return false
}
