package config

import (
	"errors"
	"os"
	"strings"

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
		data, err := os.ReadFile(c.Resolve(c.ClientCertificateChain))
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
