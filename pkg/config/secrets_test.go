package config

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeConfig(t testing.TB, dir, doc string) string {
	t.Helper()
	p := filepath.Join(dir, "config.json")
	if err := os.WriteFile(p, []byte(doc), 0o640); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestEncryptPlaintextSecretsKeepsEverythingElse(t *testing.T) {
	t.Setenv(KeyEnv, "")
	t.Setenv(KeyFileEnv, "")
	dir := t.TempDir()
	doc := strings.Replace(base, `"Passw0rd!"`, `"Pass\"w0rd!.plaintext"`, 1)
	doc = strings.Replace(doc, `"clientCertTrustStorePasscode": ""`, `"clientCertTrustStorePasscode":   "pfx-pass.plaintext"`, 1)
	doc = strings.Replace(doc, `config/ssl-certs/CA01.pem, config/ssl-certs/CA02.pem`, `config/ssl-certs/CA-combined.pfx`, 1)
	p := writeConfig(t, dir, doc)

	done, err := EncryptPlaintextSecrets(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(done, ",") != "clientCertTrustStorePasscode,kcd.serviceAccountPassword" {
		t.Fatalf("encrypted %v", done)
	}
	after, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(after, []byte("w0rd")) || bytes.Contains(after, []byte("pfx-pass")) {
		t.Fatalf("a plaintext secret survived:\n%s", after)
	}
	// Every byte outside the two values is unchanged: compare with the
	// values masked out on both sides.
	mask := func(b []byte) string {
		s := string(b)
		for _, key := range []string{`"clientCertTrustStorePasscode":   `, `"serviceAccountPassword": `} {
			i := strings.Index(s, key) + len(key)
			j := i + 1 + strings.Index(s[i+1:], `",`) + 1
			for strings.HasSuffix(s[i:j], `\"`) { // skip escaped quotes
				j += strings.Index(s[j+1:], `",`) + 1
			}
			s = s[:i] + "X" + s[j:]
		}
		return s
	}
	if mask([]byte(doc)) != mask(after) {
		t.Fatalf("other bytes changed:\n%s\n---\n%s", mask([]byte(doc)), mask(after))
	}
	st, err := os.Stat(p)
	if err != nil || st.Mode().Perm() != 0o640 {
		t.Fatalf("mode changed: %v %v", st.Mode(), err)
	}
	kst, err := os.Stat(filepath.Join(dir, "config.key"))
	if err != nil || kst.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", kst, err)
	}
	// The loader decrypts what was written.
	c, _, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.KCD.ServiceAccountPassword.Reveal() != `Pass"w0rd!` || c.ClientCertTrustStorePasscode.Reveal() != "pfx-pass" {
		t.Fatalf("decrypted %q %q", c.KCD.ServiceAccountPassword.Reveal(), c.ClientCertTrustStorePasscode.Reveal())
	}
	// A second start has nothing to do and writes nothing.
	if done, err := EncryptPlaintextSecrets(p, nil); err != nil || len(done) != 0 {
		t.Fatalf("second run: %v %v", done, err)
	}
}

// encryptedWithoutKey writes base with the service account password
// encrypted and deletes the key, as when config.json is copied without it.
func encryptedWithoutKey(t *testing.T) string {
	t.Helper()
	p := encryptedWithKey(t)
	if err := os.Remove(filepath.Join(filepath.Dir(p), "config.key")); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestEncryptedSecretWithoutKeyIsAClearError(t *testing.T) {
	p := encryptedWithoutKey(t)
	_, _, err := Load(p)
	if err == nil || !strings.Contains(err.Error(), "kcd.serviceAccountPassword") || !strings.Contains(err.Error(), ".plaintext") {
		t.Fatalf("err = %v", err)
	}
}

func TestRewriteFailureLeavesOldFile(t *testing.T) {
	t.Setenv(KeyEnv, "")
	dir := t.TempDir()
	doc := strings.Replace(base, `"Passw0rd!"`, `"Passw0rd!.plaintext"`, 1)
	p := writeConfig(t, dir, doc)
	_, err := EncryptPlaintextSecrets(p, func(string) error { return errors.New("disk full") })
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("err = %v", err)
	}
	after, _ := os.ReadFile(p)
	if string(after) != doc {
		t.Fatal("config.json changed although the rewrite failed")
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".config.json.tmp-*"))
	if len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

// TestCrashMidRewriteLeavesOldFile kills a process in the middle of the
// rewrite (temporary file written, not yet renamed) and checks that
// config.json is whole and still loads.
func TestCrashMidRewriteLeavesOldFile(t *testing.T) {
	if os.Getenv("SEGMESH_CRASH_CHILD") != "" {
		_, _ = EncryptPlaintextSecrets(os.Getenv("SEGMESH_CRASH_CHILD"), func(tmp string) error {
			_ = os.WriteFile(os.Getenv("SEGMESH_CRASH_CHILD")+".ready", []byte(tmp), 0o600)
			time.Sleep(time.Minute) // the parent kills us here
			return nil
		})
		return
	}
	dir := t.TempDir()
	doc := strings.Replace(base, `"Passw0rd!"`, `"Passw0rd!.plaintext"`, 1)
	p := writeConfig(t, dir, doc)
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashMidRewriteLeavesOldFile$")
	cmd.Env = append(os.Environ(), "SEGMESH_CRASH_CHILD="+p, KeyEnv+"=")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(p + ".ready"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatal("child never reached the rewrite")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	after, err := os.ReadFile(p)
	if err != nil || string(after) != doc {
		t.Fatalf("config.json not intact after a crash mid-rewrite: %v", err)
	}
	if _, _, err := Load(p); err != nil {
		t.Fatalf("old config no longer loads: %v", err)
	}
	// The next start finishes the job.
	if done, err := EncryptPlaintextSecrets(p, nil); err != nil || len(done) != 1 {
		t.Fatalf("next start: %v %v", done, err)
	}
}

func TestFindSecretSpansIgnoresLookalikes(t *testing.T) {
	doc := `{"segmesh":{"edge":{"paths":["kcd.serviceAccountPassword"]}},"other":{"serviceAccountPassword":"x.plaintext"},
	"kcd":{"domains":[{"domain":"A.B"}],"serviceAccountPassword":"y.plaintext"}}`
	spans, err := findSecretSpans([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if len(spans) != 1 || spans[0].path != "kcd.serviceAccountPassword" || spans[0].value != "y.plaintext" || doc[spans[0].start:spans[0].end] != `"y.plaintext"` {
		t.Fatalf("spans = %+v", spans)
	}
}
