package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEncryptUsesTheKeyFileLoadReads: with segmesh.installDir and a
// relative segmesh.secretKeyFile, encrypting the .plaintext secret must use
// the key file Load reads (resolved from installDir). It used to resolve the
// key path from config.json's folder: the key was written next to
// config.json although the operator had put it elsewhere (a backup of the
// config folder then holds both the ciphertext and its key), and the next
// Load could not decrypt.
func TestEncryptUsesTheKeyFileLoadReads(t *testing.T) {
	t.Setenv(KeyEnv, "")
	t.Setenv(KeyFileEnv, "")
	dir, inst := t.TempDir(), t.TempDir()
	for _, d := range []string{dir, inst} {
		if err := os.Mkdir(filepath.Join(d, "keys"), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	doc := edit(t, strings.Replace(base, `"Passw0rd!"`, `"Passw0rd!.plaintext"`, 1),
		map[string]any{"segmesh/installDir": inst, "segmesh/secretKeyFile": "keys/config.key"})
	p := writeConfig(t, dir, doc)
	if _, err := EncryptPlaintextSecrets(p, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "keys", "config.key")); err == nil {
		t.Error("the secrets key was written next to config.json, not in segmesh.installDir")
	}
	c, _, err := Load(p)
	if err != nil {
		t.Fatalf("Load after encrypting: %v", err)
	}
	if got := c.KCD.ServiceAccountPassword.Reveal(); got != "Passw0rd!" {
		t.Fatalf("decrypted %q", got)
	}
}
