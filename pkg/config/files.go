package config

import (
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/segmesh/segmesh/pkg/safefile"
)

// Bounds on the files an admin names, past which a file is refused without
// being read further (docs/operations.md, "Files the configuration
// names"). Each is far above what a real file of its kind holds and far
// below what would hurt the process: every reload and `config check` read
// these files while the gateway serves.
const (
	// MaxConfigFile bounds config.json (a real one is a few kilobytes).
	MaxConfigFile = 4 << 20
	// MaxKeyFile bounds the secrets key file (44 characters of base64).
	MaxKeyFile = 4 << 10
	// MaxPEMFile bounds a PEM certificate, private key, chain or CA bundle
	// and a PFX (a whole system CA bundle is about 220 KiB).
	MaxPEMFile = 8 << 20
)

// ReadFile reads the file at path, which the setting key names, through
// pkg/safefile: opened without blocking, refused unless the open
// descriptor is a regular file (a FIFO would block the start, a reload or
// `config check` until a writer comes; a link to /dev/zero would be read
// without end) and read no further than limit bytes. Its error is a
// *Problem on key whose Message says why and whose Fix is fix.
func ReadFile(key, path string, limit int64, fix string) ([]byte, error) {
	return readFile(key, path, limit, fix, safefile.Read, "")
}

// ReadTrustedFile is ReadFile for a file whose content the gateway trusts
// (a CA bundle, the console chain): it is refused too when another local
// user could replace it (safefile.CheckReplaceable: group or others may
// write it or a directory above it, or another user owns one). Whoever
// writes a CA bundle adds a CA of theirs: the Exchange CA lets them pose
// as Exchange, the LDAP CA as the directory the bind password goes to.
// The Problem's Message then says what is wrong and its Fix is the chmod
// or chown that repairs it.
func ReadTrustedFile(key, path string, limit int64, fix string) ([]byte, error) {
	return readFile(key, path, limit, fix, safefile.ReadTrusted, "replace")
}

// ReadPrivateFile is ReadFile for a secret file (the edge's private key or
// PFX): refused as a *Problem on key when another local user could read
// or replace it (safefile.CheckPrivate: others may read it, group or
// others write it, another user owns it, or a directory on its way is
// writable by them), checked on the descriptor it then reads.
func ReadPrivateFile(key, path string, limit int64, fix string) ([]byte, error) {
	return readFile(key, path, limit, fix, safefile.ReadPrivate, "read or replace")
}

// readFile is ReadFile, ReadTrustedFile and ReadPrivateFile, reading with
// read; exposed says what another user could do to a file read refuses
// (ReadFile's refuses only a file holding a private key others may read).
func readFile(key, path string, limit int64, fix string, read func(string, int64) ([]byte, error), exposed string) ([]byte, error) {
	data, err := read(path, limit)
	if err == nil {
		return data, nil
	}
	p := &Problem{Severity: SeverityError, Key: key, Value: path, Message: "cannot be read: " + err.Error(), Fix: fix, Err: err}
	if e, ok := errors.AsType[*safefile.ExposedError](err); ok {
		p.Message, p.Fix = e.Explain(path, exposed), e.Fix
		return nil, p
	}
	switch {
	case errors.Is(err, safefile.ErrNotRegular):
		p.Message = "is not a regular file (a FIFO, a device or a directory): reading it could block or never end"
	case errors.Is(err, safefile.ErrTooLarge):
		p.Message = fmt.Sprintf("is larger than %d bytes, far more than such a file holds", limit)
	}
	return nil, p
}

// CAPool reads the PEM CA bundle at path, which the setting key names, as
// ReadTrustedFile does (bounded by MaxPEMFile), into a pool. A file without a PEM
// certificate is a *Problem on key too.
func CAPool(key, path, fix string) (*x509.CertPool, error) {
	data, err := ReadTrustedFile(key, path, MaxPEMFile, fix)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, &Problem{Severity: SeverityError, Key: key, Value: path, Message: "holds no PEM certificate", Fix: fix}
	}
	return pool, nil
}

// ProblemOf returns err as a Problem when it is (or wraps) one, and
// otherwise a Problem on key saying err.
func ProblemOf(key, value string, err error, fix string) Problem {
	if p, ok := errors.AsType[*Problem](err); ok {
		return *p
	}
	return Problem{Severity: SeverityError, Key: key, Value: value, Message: err.Error(), Fix: fix, Err: err}
}
