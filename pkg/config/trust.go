package config

import (
	"errors"
	"strings"

	"github.com/segmesh/segmesh/pkg/trust"
)

// TrustSpec is the step that builds pkg/trust's Spec from the configuration,
// the one the edge loads, diagnose opens and config check validates. As SEG
// does, the console chain (clientCertificateChain) is read only when no local
// trust store (clientCertTrustStorePath) is set. An unreadable console chain,
// or one another local user could replace, is a *Problem on its key.
func (c *Config) TrustSpec() (trust.Spec, error) {
	return ReadConsoleChain(c.TrustFiles())
}

// TrustFiles is TrustSpec without I/O: the spec without the console chain
// read, and the console chain's file (resolved against the install
// directory) when SEG would read it, else "". A role that reads the chain
// later (the crl role, at its start and every reload) keeps the two and
// calls ReadConsoleChain.
func (c *Config) TrustFiles() (trust.Spec, string) {
	s := trust.Spec{
		TrustStorePath: c.ClientCertTrustStorePath,
		Passcode:       c.ClientCertTrustStorePasscode.Reveal(),
		BaseDir:        c.BaseDir,
		Resolve:        c.Resolve,
	}
	chain := ""
	if strings.TrimSpace(c.ClientCertTrustStorePath) == "" && c.ClientCertificateChain != "" {
		chain = c.Resolve(c.ClientCertificateChain)
	}
	return s, chain
}

// consoleChainFix is the fix for a console chain that cannot be read.
const consoleChainFix = "name the PEM file holding the chain uploaded in the console; relative paths start at the install directory"

// ReadConsoleChain returns s with the console chain file chain read into
// it (s as it is when chain is ""), through ReadTrustedFile: a regular
// file of at most MaxPEMFile bytes that no other local user could replace
// (whoever writes the chain adds a CA of theirs, as with the trust store).
// Its error is a *Problem on clientCertificateChain.
func ReadConsoleChain(s trust.Spec, chain string) (trust.Spec, error) {
	if chain == "" {
		return s, nil
	}
	data, err := ReadTrustedFile(trust.KeyConsoleChain, chain, MaxPEMFile, consoleChainFix)
	if err != nil {
		if p, ok := errors.AsType[*Problem](err); ok {
			p.Package = "trust"
		}
		return trust.Spec{}, err
	}
	s.ConsoleChainPEM = data
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
