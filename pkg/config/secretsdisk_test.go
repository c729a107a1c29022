package config

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestEncryptThroughSymlink: a config.json that is a symbolic link (a
// Kubernetes ConfigMap's ..data layout, a package's /etc link) is rewritten
// where it points; the link stays a link. Before, the rename replaced the
// link with a regular file: the real file kept the plaintext and later edits
// to it were ignored.
func TestEncryptThroughSymlink(t *testing.T) {
	t.Setenv(KeyEnv, "")
	t.Setenv(KeyFileEnv, "")
	dir := t.TempDir()
	real := filepath.Join(dir, "..2026_12_05", "config.json")
	if err := os.MkdirAll(filepath.Dir(real), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(real, []byte(strings.Replace(base, `"Passw0rd!"`, `"Passw0rd!.plaintext"`, 1)), 0o640); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "config.json")
	if err := os.Symlink(filepath.Join("..2026_12_05", "config.json"), link); err != nil {
		t.Fatal(err)
	}
	if done, err := EncryptPlaintextSecrets(link, nil); err != nil || len(done) != 1 {
		t.Fatalf("EncryptPlaintextSecrets = %v, %v", done, err)
	}
	st, err := os.Lstat(link)
	if err != nil || st.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("config.json is no longer a link: %v %v", st.Mode(), err)
	}
	after, err := os.ReadFile(real)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(after, []byte("Passw0rd!")) || !bytes.Contains(after, []byte(encPrefix)) {
		t.Fatalf("the link's target was not encrypted:\n%s", after)
	}
	if c, _, err := Load(link); err != nil || c.KCD.ServiceAccountPassword.Reveal() != "Passw0rd!" {
		t.Fatalf("Load through the link: %v", err)
	}
}

// TestKeyCreationRace: two processes starting together on a fresh directory
// both create config.key; both must end with the same key (one of them used
// to fail with "file exists" and exit), and what they wrote must decrypt.
func TestKeyCreationRace(t *testing.T) {
	t.Setenv(KeyEnv, "")
	t.Setenv(KeyFileEnv, "")
	for round := range 40 {
		dir := t.TempDir()
		p := writeConfig(t, dir, strings.Replace(base, `"Passw0rd!"`, `"Passw0rd!.plaintext"`, 1))
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = EncryptPlaintextSecrets(p, nil)
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d, start %d: %v", round, i, err)
			}
		}
		if c, _, err := Load(p); err != nil || c.KCD.ServiceAccountPassword.Reveal() != "Passw0rd!" {
			t.Fatalf("round %d: the config written does not decrypt with the key: %v", round, err)
		}
	}
}

// TestKeyReaderNeverSeesPartialKey: while one start creates config.key,
// another reading it either finds no file or the whole key, never an empty
// or partial file.
func TestKeyReaderNeverSeesPartialKey(t *testing.T) {
	t.Setenv(KeyEnv, "")
	t.Setenv(KeyFileEnv, "")
	for round := range 100 {
		dir := t.TempDir()
		c := &Config{Path: filepath.Join(dir, "config.json"), BaseDir: dir}
		done := make(chan struct{})
		var created []byte
		go func() {
			defer close(done)
			created, _ = c.loadKey(true)
		}()
		for {
			k, err := c.loadKey(false)
			if err == nil {
				<-done
				if !bytes.Equal(k, created) {
					t.Fatalf("round %d: reader got another key", round)
				}
				break
			}
			if !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("round %d: reader saw the key file half made: %v", round, err)
			}
			select {
			case <-done:
				if _, err := c.loadKey(false); err != nil {
					t.Fatalf("round %d: after creation: %v", round, err)
				}
			default:
				continue
			}
			break
		}
	}
}
