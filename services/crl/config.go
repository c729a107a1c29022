package crl

import (
	"fmt"
	"time"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/trust"
)

// KeyStateDir is the setting naming the state directory.
const KeyStateDir = "segmesh.crl.stateDir"

// DefaultStateDir is where the last good CRLs are kept when
// segmesh.crl.stateDir is empty, relative to the install directory.
const DefaultStateDir = "crl-cache"

// Config is the crl role's section of the configuration.
type Config struct {
	// Enabled is enable.cert.revocation.validation as honoured (only with KCD
	// or Require Client Certificate on). Off, the role serves an empty
	// snapshot and fetches nothing.
	Enabled bool
	// URLs is remote.crl.distribution.http.uris.
	URLs []string
	// Interval is remote.crl.fetch.interval.in.minutes, or
	// segmesh.crl.fetchIntervalSeconds when set.
	Interval time.Duration
	// FailHard is fail.hard.on.crl.download.failure.during.server.startup.
	FailHard bool
	// FailClosedOnStale is segmesh.crl.failClosedOnStale.
	FailClosedOnStale bool
	// UseCertificateCDPs is segmesh.crl.useCertificateCdps: also fetch the
	// HTTP distribution points named in trusted CA certificates and in
	// certificates passed to Check that a trusted CA signed.
	UseCertificateCDPs bool
	// StateDir keeps the last good CRLs; empty means no disk copy.
	StateDir string
	// Trust is the client-certificate trust store CRLs are verified against.
	Trust trust.Spec
	// ConsoleChainFile is clientCertificateChain, resolved; read at Start
	// when Trust has no local path.
	ConsoleChainFile string
}

// ConfigFrom derives the role's configuration from config.json. It does no
// I/O.
func ConfigFrom(c *config.Config) Config {
	g := c.Gateway
	stateDir := c.Segmesh.CRL.StateDir
	if stateDir == "" {
		stateDir = DefaultStateDir
	}
	out := Config{
		Enabled:            c.RevocationHonoured(),
		URLs:               g.CRLURIs,
		Interval:           c.CRLRefreshInterval(),
		FailHard:           g.FailHardOnCRLDownload,
		FailClosedOnStale:  c.Segmesh.CRL.FailClosedOnStale,
		UseCertificateCDPs: c.Segmesh.CRL.UseCertificateCDPs,
		StateDir:           c.Resolve(stateDir),
	}
	out.Trust, out.ConsoleChainFile = c.TrustFiles()
	return out
}

// Validate returns the problems the crl role finds in c beyond
// config.Load's rules. `segmesh run` refuses to start on any error among
// them and `segmesh config check` reports the same problems. With
// revocation checking on, the role loads the client certificate trust
// store (CRLs are verified against it) and, without a local store, the
// console chain at its start: so Validate opens them as the start will
// (config.TrustProblems), and a process running the crl role alone
// refuses a chain it could not load in Validate, as one with the edge
// does, rather than at the role's start. It refuses a state directory
// another local user could change (stateDirProblems).
func Validate(c *config.Config) []config.Problem {
	cfg := ConfigFrom(c)
	out := cfg.problems()
	if cfg.Enabled {
		out = append(out, config.TrustProblems(c)...)
		out = append(out, stateDirProblems(cfg.StateDir)...)
	}
	return out
}

// problems checks what the role needs beyond config.Load's rules.
func (c Config) problems() []config.Problem {
	if !c.Enabled {
		return nil
	}
	var out []config.Problem
	if len(c.URLs) == 0 && !c.UseCertificateCDPs {
		out = append(out, config.Problem{Severity: config.SeverityError, Key: config.KeyCRLURIs, Message: "revocation checking is on but no distribution point is set",
			Fix: "list the CRL URLs, comma separated, or set segmesh.crl.useCertificateCdps"})
	}
	if c.Interval <= 0 {
		out = append(out, config.Problem{Severity: config.SeverityError, Key: config.KeyCRLFetchIntervalMinutes, Message: "the refresh interval must be positive",
			Fix: "write a positive number of minutes (SEG's default is 1440, one day)"})
	}
	return out
}

// trustSpec returns the trust-store spec with the console chain read, as
// SEG uses it only when no local trust store is set (config.ReadConsoleChain,
// the edge's and config check's reader: bounded, regular files only, and
// refused when another local user could replace it).
func (c Config) trustSpec() (trust.Spec, error) {
	s, err := config.ReadConsoleChain(c.Trust, c.ConsoleChainFile)
	if err != nil {
		return trust.Spec{}, fmt.Errorf("crl: %w", err)
	}
	return s, nil
}
