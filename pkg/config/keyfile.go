package config

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/segmesh/segmesh/pkg/safefile"
)

// readKeyFile reads the secrets key file at path (segmesh.secretKeyFile,
// config.key beside config.json, or SEGMESH_CONFIG_KEY_FILE), through
// safefile.ReadPrivate: opened without blocking, a regular file only (a
// FIFO would block the start, every reload and `config check`), read no
// further than MaxKeyFile bytes (what was read cleared on an error), and
// refused, as OpenSSH refuses a private key, when
// another user could read or replace it (safefile.CheckPrivate: its mode,
// its owner, its directory). Whoever reads it decrypts every secret of
// config.json; whoever replaces it has the next `.plaintext` secret
// encrypted under a key of theirs. The error names the file and the fix;
// it wraps os.ErrNotExist for a missing file.
func readKeyFile(path string) ([]byte, error) {
	data, err := safefile.ReadPrivate(path, MaxKeyFile)
	if e, ok := errors.AsType[*safefile.ExposedError](err); ok {
		return nil, fmt.Errorf("secrets key %s: %s, and whoever reads the key decrypts every secret of config.json (fix: %s)", path, e.About(path), e.Fix)
	}
	switch {
	case errors.Is(err, safefile.ErrNotRegular):
		return nil, fmt.Errorf("secrets key %s is not a regular file (a FIFO, a device or a directory); name the key file itself", path)
	case errors.Is(err, safefile.ErrTooLarge):
		return nil, fmt.Errorf("secrets key %s is larger than %d bytes, not base64 of 32 bytes; name the key file itself", path, MaxKeyFile)
	case err != nil:
		return nil, fmt.Errorf("read secrets key %s: %w", path, err)
	}
	return data, nil
}

// loadKey returns the secrets key. With create, a missing key file is made
// (mode 0600, never overwritten).
func (c *Config) loadKey(create bool) ([]byte, error) {
	if v := os.Getenv(KeyEnv); v != "" {
		k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v))
		if err != nil || len(k) != 32 {
			return nil, fmt.Errorf("%s is not base64 of 32 bytes", KeyEnv)
		}
		return k, nil
	}
	path := c.KeyFile()
	data, err := readKeyFile(path)
	if errors.Is(err, os.ErrNotExist) && create {
		k, made, cerr := createKey(path)
		if cerr != nil || made {
			return k, cerr
		}
		// Another process made it first: use that one.
		data, err = readKeyFile(path)
	}
	if err != nil {
		return nil, err
	}
	defer clear(data)
	k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data)))
	if err != nil || len(k) != 32 {
		clear(k) // what was decoded before the error, or a key of another length
		return nil, fmt.Errorf("secrets key %s is not base64 of 32 bytes", path)
	}
	return k, nil
}

// createKey makes a new key file at path, never replacing one: the key is
// written and synced to a temporary file that is then hard-linked to path,
// so path appears only whole (a reader never sees it empty or partial) and,
// when two processes start together, exactly one link succeeds. made is
// false when path already existed: the caller reads that key.
func createKey(path string) (key []byte, made bool, err error) {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, false, fmt.Errorf("make secrets key: %w", err)
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*") // mode 0600
	if err != nil {
		return nil, false, fmt.Errorf("create secrets key %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() { _ = os.Remove(tmp) }()
	_, werr := f.WriteString(base64.StdEncoding.EncodeToString(k) + "\n")
	serr := f.Sync()
	if cerr := f.Close(); werr == nil && serr == nil {
		werr = cerr
	}
	if werr != nil || serr != nil {
		return nil, false, fmt.Errorf("write secrets key %s: %w", path, errors.Join(werr, serr))
	}
	if err := os.Link(tmp, path); errors.Is(err, os.ErrExist) {
		return nil, false, nil
	} else if err != nil {
		return nil, false, fmt.Errorf("create secrets key %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return k, true, nil
}
