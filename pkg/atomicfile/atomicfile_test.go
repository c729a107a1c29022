package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteReplacesWithMode(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f.json")
	if err := os.WriteFile(p, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Write(p, []byte("new"), 0o600, nil); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(p)
	st, _ := os.Stat(p)
	if err != nil || string(got) != "new" || st.Mode().Perm() != 0o600 {
		t.Fatalf("got %q mode %v err %v", got, st.Mode(), err)
	}
}

func TestAbortedWriteLeavesOldFileAndNoTemp(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f.json")
	if err := os.WriteFile(p, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	var sawTemp string
	err := Write(p, []byte("new"), 0o644, func(tmp string) error {
		sawTemp = tmp
		if b, _ := os.ReadFile(tmp); string(b) != "new" {
			t.Errorf("temporary file holds %q before the rename", b)
		}
		return errors.New("interrupted")
	})
	if err == nil || err.Error() != "interrupted" {
		t.Fatalf("err = %v", err)
	}
	if got, _ := os.ReadFile(p); string(got) != "old" {
		t.Fatalf("target changed: %q", got)
	}
	if _, err := os.Stat(sawTemp); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temporary file left behind: %v", err)
	}
}

func TestWriteIntoMissingDirectoryFails(t *testing.T) {
	if err := Write(filepath.Join(t.TempDir(), "no", "f"), []byte("x"), 0o600, nil); err == nil {
		t.Fatal("wrote into a directory that does not exist")
	}
}
