package config

import (
	"encoding/json"
	"testing"
)

// FuzzFindSecretSpans checks the scanner EncryptPlaintextSecrets rewrites
// config.json with (outside input: the operator's file): on any input it
// never panics, and every span it returns is exactly the quoted JSON string
// whose decoded value it reports, so a rewrite replaces only that value.
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
