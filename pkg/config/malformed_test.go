package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEncryptPlaintextSecretsMalformedJSON checks that `segmesh run`, which
// encrypts ".plaintext" secrets before loading, reports malformed JSON with
// its line and column as Load does (issue 12), and writes nothing.
func TestEncryptPlaintextSecretsMalformedJSON(t *testing.T) {
	for _, tc := range []struct {
		name, data, want string
	}{
		{"double comma", "{\n  \"kcd\": {\"enabled\": true,,}\n}\n", "line 2, column 27"},
		{"bad value", "{\"kcd\": {\"serviceAccountPassword\": \"x.plaintext\", \"enabled\": tru}}", "line 1, column 65"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.json")
			if err := os.WriteFile(path, []byte(tc.data), 0o640); err != nil {
				t.Fatal(err)
			}
			done, err := EncryptPlaintextSecrets(path, nil)
			var ce *Error
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("EncryptPlaintextSecrets = %v, %v; want a *config.Error naming %q", done, err, tc.want)
			}
			b, _ := os.ReadFile(path)
			if string(b) != tc.data {
				t.Fatal("config.json changed")
			}
		})
	}
}
