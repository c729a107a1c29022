package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/pkg/safefile/safefiletest"
)

// TestAttackConfigFileNotRegular: config.json itself named as a FIFO
// without a writer (a plain read blocks for ever: the start, every reload
// and `config check` with it), a link to /dev/zero (read without end), a
// directory or a 64 MiB file. Load and EncryptPlaintextSecrets (the
// start's rewrite) refuse each at once, saying why. On main os.ReadFile
// blocked on the FIFO and read /dev/zero without end, and a 64 MiB file
// was read whole.
func TestAttackConfigFileNotRegular(t *testing.T) {
	for _, kind := range append(safefiletest.Kinds(), safefiletest.Large) {
		t.Run(string(kind), func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "config.json")
			unblock := safefiletest.Make(t, kind, p)
			want := "not a regular file"
			if kind == safefiletest.Large {
				want = "larger than"
			}
			for _, f := range []struct {
				name string
				read func() error
			}{
				{"Load", func() error { _, _, err := Load(p); return err }},
				{"EncryptPlaintextSecrets", func() error { _, err := EncryptPlaintextSecrets(p, nil); return err }},
			} {
				var err error
				safefiletest.Within(t, f.name, unblock, func() { err = f.read() })
				if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), want) {
					t.Errorf("%s = %v; want an error naming %s and saying %q", f.name, err, p, want)
				}
			}
		})
	}
}

// encryptedWithKey writes base with the service account password
// encrypted under config.key beside it, and returns config.json's path.
func encryptedWithKey(t *testing.T) string {
	t.Helper()
	t.Setenv(KeyEnv, "")
	t.Setenv(KeyFileEnv, "")
	dir := t.TempDir()
	p := writeConfig(t, dir, strings.Replace(base, `"Passw0rd!"`, `"Passw0rd!.plaintext"`, 1))
	if _, err := EncryptPlaintextSecrets(p, nil); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestAttackSecretKeyFileNotRegular: the secrets key file (config.key,
// segmesh.secretKeyFile) replaced by a FIFO, a link to /dev/zero or a
// directory. Load (the start, every reload, `config check`) refuses the
// encrypted secret at once, naming the key file. On main os.ReadFile
// blocked on the FIFO and read /dev/zero without end.
func TestAttackSecretKeyFileNotRegular(t *testing.T) {
	for _, kind := range safefiletest.Kinds() {
		t.Run(string(kind), func(t *testing.T) {
			p := encryptedWithKey(t)
			key := filepath.Join(filepath.Dir(p), "config.key")
			if err := os.Remove(key); err != nil {
				t.Fatal(err)
			}
			unblock := safefiletest.Make(t, kind, key)
			var err error
			safefiletest.Within(t, "Load", unblock, func() { _, _, err = Load(p) })
			if err == nil || !strings.Contains(err.Error(), "kcd.serviceAccountPassword") || !strings.Contains(err.Error(), key) {
				t.Errorf("Load = %v; want the encrypted secret refused, naming %s", err, key)
			}
		})
	}
}

// TestAttackSecretKeyFileExposed: the secrets key file is refused, as the
// session ticket key file is and as OpenSSH refuses a private key, when
// another user could read or replace it: others may read it, group or
// others may write it or the directory holding it. Whoever reads it
// decrypts every secret of config.json; whoever replaces it has the next
// `.plaintext` secret encrypted under a key of theirs. The refusal names
// the file and the chmod that fixes it. On main each was accepted.
func TestAttackSecretKeyFileExposed(t *testing.T) {
	for _, tc := range []struct {
		name          string
		file, dirMode os.FileMode
		want          string // "" accepted
	}{
		{"0600 in a 0700 directory", 0o600, 0o700, ""},
		{"0440 (a Kubernetes Secret with fsGroup)", 0o440, 0o750, ""},
		{"others may read it", 0o604, 0o700, "has mode 0604"},
		{"group may write it", 0o620, 0o700, "has mode 0620"},
		{"the directory is group-writable", 0o600, 0o770, "has mode 0770"},
		{"the directory is world-writable", 0o600, 0o777, "has mode 0777"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := encryptedWithKey(t)
			dir := filepath.Dir(p)
			if err := os.Chmod(filepath.Join(dir, "config.key"), tc.file); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, tc.dirMode); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = os.Chmod(dir, 0o700) })
			c, _, err := Load(p)
			if tc.want == "" {
				if err != nil || c.KCD.ServiceAccountPassword.Reveal() != "Passw0rd!" {
					t.Fatalf("Load = %v; want the secret decrypted", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "chmod") {
				t.Fatalf("Load = %v; want a refusal saying %q and the chmod that fixes it", err, tc.want)
			}
		})
	}
}

// TestAttackSecretKeyMadeInAnOpenDirectory: config.json in a directory
// others may write, with a ".plaintext" secret and no key file yet. The
// start's rewrite (EncryptPlaintextSecrets) makes the key there, where
// readKeyFile would refuse it; the start must not then run on it, as the
// next reload or restart would refuse it: Load, which the start runs next,
// refuses the key with the directory's mode and the fix. Attacker review
// rvpath, session 8: held on main.
func TestAttackSecretKeyMadeInAnOpenDirectory(t *testing.T) {
	t.Setenv(KeyEnv, "")
	t.Setenv(KeyFileEnv, "")
	dir := t.TempDir()
	p := writeConfig(t, dir, strings.Replace(base, `"Passw0rd!"`, `"Passw0rd!.plaintext"`, 1))
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(dir, 0o700) })
	if _, err := EncryptPlaintextSecrets(p, nil); err != nil {
		return // refused at once: the start does not run
	}
	_, _, err := Load(p)
	if err == nil || !strings.Contains(err.Error(), "has mode 0777") || !strings.Contains(err.Error(), "chmod") {
		t.Fatalf("Load after the key was made in a directory others may write = %v; want the refusal a restart gives", err)
	}
}
