package config

import (
	"errors"
	"fmt"
	"strings"

	"github.com/segmesh/segmesh/pkg/safefile"
	"github.com/segmesh/segmesh/pkg/trust"
)

// TrustSpec is the step that builds pkg/trust's Spec from the configuration,
// the one the edge loads, diagnose opens and config check validates. As SEG
// does, the console chain (clientCertificateChain) is read only when no local
// trust store (clientCertTrustStorePath) is set. An unreadable console chain
// is a *Problem on its key.
func (c *Config) TrustSpec() (trust.Spec, error) {
	s := trust.Spec{
		TrustStorePath: c.ClientCertTrustStorePath,
		Passcode:       c.ClientCertTrustStorePasscode.Reveal(),
		BaseDir:        c.BaseDir,
		Resolve:        c.Resolve,
	}
	if strings.TrimSpace(c.ClientCertTrustStorePath) == "" && c.ClientCertificateChain != "" {
		data, err := readChain(c.Resolve(c.ClientCertificateChain))
		if err != nil {
			return trust.Spec{}, &Problem{Severity: SeverityError, Key: trust.KeyConsoleChain, Value: c.ClientCertificateChain,
				Message: "cannot be read: " + err.Error(), Fix: "name the PEM file holding the chain uploaded in the console; relative paths start at the install directory",
				Package: "trust", Err: err}
		}
		s.ConsoleChainPEM = data
	}
	return s, nil
}

// TrustProblems opens the trust store as the edge will (files, PFX passcode,
// certificates) and returns what it finds: the edge's Validate reports them,
// so `run` refuses and `config check` prints the same problems.
func TrustProblems(c *Config) []Problem {
	spec, err := c.TrustSpec()
	var p *Problem
	if errors.As(err, &p) {
		return []Problem{*p}
	}
	return trust.Validate(spec)
}

// maxChainFile bounds the console chain file: a chain is kilobytes.
const maxChainFile = 8 << 20

// readChain reads the console chain file, a regular file of at most
// maxChainFile bytes. It opens without blocking and checks the open
// descriptor: every reload and config check read it (the edge's Validate),
// and a FIFO there (a plain open blocks until a writer comes) or a link to
// /dev/zero must be refused, not hang or feed the reload.
func readChain(path string) ([]byte, error) {
	data, err := safefile.Read(path, maxChainFile)
	if errors.Is(err, safefile.ErrTooLarge) {
		return nil, fmt.Errorf("%s is larger than %d bytes, not a certificate chain", path, maxChainFile)
	}
	return data, err
}
