package trust

import (
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"strings"
	"time"
)

// Store is an immutable snapshot of the trust store: the CA certificates, their pool, where
// they came from and when they were loaded. It is safe for concurrent use.
type Store struct {
	pool     *x509.CertPool
	certs    []*x509.Certificate
	kind     Kind
	entries  []string
	paths    []string
	loadedAt time.Time
	warnings []Problem
	// fingerprint digests the bytes the Store was built from, so a Reloader can tell
	// whether the files changed.
	fingerprint [sha256.Size]byte
	// verified remembers the chains VerifyClientChain accepted against this Store.
	verified verifyCache
}

// Pool returns the certificate pool for tls.Config.ClientCAs and x509.VerifyOptions.Roots.
// Callers must not modify it.
func (s *Store) Pool() *x509.CertPool { return s.pool }

// Certificates returns the trusted certificates, without duplicates, in file order.
func (s *Store) Certificates() []*x509.Certificate {
	return append([]*x509.Certificate(nil), s.certs...)
}

// Kind says where the certificates came from.
func (s *Store) Kind() Kind { return s.kind }

// Files returns the files the Store was read from, resolved against the base directory;
// nil for the console chain or no trust.
func (s *Store) Files() []string { return append([]string(nil), s.paths...) }

// Source describes the origin for logs and errors, e.g.
// "PEM files config/ssl-certs/CA01.pem, config/ssl-certs/CA02.pem".
func (s *Store) Source() string {
	switch s.kind {
	case KindPEM:
		return "PEM files " + strings.Join(s.entries, ", ")
	case KindPFX:
		return "PFX " + s.entries[0]
	case KindConsole:
		return "the console client certificate chain"
	}
	return "no trust store"
}

// LoadedAt returns when the Store was built.
func (s *Store) LoadedAt() time.Time { return s.loadedAt }

// Warnings returns the warnings found while loading (non-CA or expired certificates,
// ignored settings); nil when there were none.
func (s *Store) Warnings() []Problem { return append([]Problem(nil), s.warnings...) }

// Empty reports whether the Store trusts no certificate at all.
func (s *Store) Empty() bool { return len(s.certs) == 0 }

// Load reads the trust store spec describes and builds a Store. Every problem is reported
// at once: the error joins one *Problem per finding of SeverityError. With nothing
// configured, Load returns an empty Store of KindNone and no error; whether that is
// acceptable (it is not with KCD or Require Client Certificate on) is the caller's rule.
func Load(spec Spec) (*Store, error) {
	return load(spec, time.Now())
}

// Validate runs every check Load runs, reading the files but keeping nothing, and returns
// all findings, errors and warnings, for `segmesh config check`. It never logs or writes.
func Validate(spec Spec) []Problem {
	_, ps := build(spec, time.Now())
	out := make([]Problem, len(ps))
	for i, p := range ps {
		out[i] = *p
	}
	return out
}

// readFixDefault is the fix for a trust-store file that cannot be read.
const readFixDefault = "check the path (relative paths start at the install directory) and the file's permissions"

func load(spec Spec, now time.Time) (*Store, error) {
	s, ps := build(spec, now)
	if errs := ps.errors(); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return s, nil
}

// build does the work of Load and Validate. The Store is nil when there are errors.
func build(spec Spec, now time.Time) (*Store, problems) {
	var ps problems
	p := spec.plan(&ps)
	if len(ps.errors()) > 0 {
		return nil, ps
	}
	var certs []sourced
	fp := sha256.New()
	switch p.kind {
	case KindPEM:
		for i, path := range p.paths {
			data, err := readFile(path)
			writeFingerprint(fp, path, data, err)
			if err != nil {
				ps.add(SeverityError, KeyPath, p.entries[i], readProblem(err, path, spec.BaseDir), readFix(err, readFixDefault), err)
				continue
			}
			certs = append(certs, parsePEMFile(data, p.entries[i], KeyPath, &ps)...)
		}
	case KindPFX:
		data, err := readFile(p.paths[0])
		writeFingerprint(fp, p.paths[0], data, err)
		if err != nil {
			ps.add(SeverityError, KeyPath, p.entries[0], readProblem(err, p.paths[0], spec.BaseDir), readFix(err, readFixDefault), err)
			break
		}
		certs = parsePFXFile(data, p.entries[0], spec.Passcode, &ps)
	case KindConsole:
		certs = parsePEMFile(spec.ConsoleChainPEM, "", KeyConsoleChain, &ps)
	}
	fp.Write([]byte{0xff})
	fp.Write(spec.ConsoleChainPEM)
	if len(ps.errors()) > 0 {
		return nil, ps
	}
	unique := checkCertificates(certs, now, &ps)
	if p.kind == KindPEM || p.kind == KindPFX {
		checkConsoleShadowed(spec.ConsoleChainPEM, unique, &ps)
	}
	s := &Store{
		pool:     x509.NewCertPool(),
		kind:     p.kind,
		entries:  p.entries,
		paths:    p.paths,
		loadedAt: now,
		warnings: ps.warnings(),
	}
	fp.Sum(s.fingerprint[:0])
	for _, c := range unique {
		s.pool.AddCert(c)
		s.certs = append(s.certs, c)
	}
	return s, ps
}
