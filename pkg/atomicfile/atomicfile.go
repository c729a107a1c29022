// Package atomicfile replaces a file so that a crash at any point leaves
// either the old content or the new one whole, never a mix: the data goes to
// a temporary file in the same directory, is fsynced, renamed over the
// target, and the directory is fsynced. config.json rewrites (encrypted
// secrets) and the crl role's last-good CRLs use it.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// Hook runs after the temporary file is complete and before it replaces the
// target; an error aborts the write (tests use it to interrupt one).
type Hook func(tempPath string) error

// Write replaces path with data, with file mode mode. beforeRename may be nil.
func Write(path string, data []byte, mode os.FileMode, beforeRename Hook) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err == nil {
		if err = f.Chmod(mode); err == nil {
			err = f.Sync()
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("atomicfile: write %s: %w", tmp, err)
	}
	if beforeRename != nil {
		if err = beforeRename(tmp); err != nil {
			return err
		}
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	defer func() { _ = d.Close() }()
	if err = d.Sync(); err != nil {
		return fmt.Errorf("atomicfile: sync %s: %w", dir, err)
	}
	return nil
}
