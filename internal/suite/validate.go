package suite

import (
	"os"
	"slices"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/role"
	"github.com/segmesh/segmesh/pkg/telemetry"
	"github.com/segmesh/segmesh/services/crl"
	"github.com/segmesh/segmesh/services/edge"
	"github.com/segmesh/segmesh/services/identity"
	"github.com/segmesh/segmesh/services/ticket"
)

// Validators returns each role's Validate, by name: the checks a role makes
// beyond config.Load's rules.
func Validators() map[string]func(*config.Config) []config.Problem {
	return map[string]func(*config.Config) []config.Problem{
		role.CRL:      crl.Validate,
		role.Identity: identity.Validate,
		role.Ticket:   ticket.Validate,
		role.Edge:     edge.Validate,
	}
}

// Validate returns what the named roles find in cfg beyond report (what
// config.Load found): `segmesh run` refuses to start on any error among
// them, and `segmesh config check` prints them, so check is exactly as
// strict as run. A role's problem on a key config.Load already reported as
// an error is left out: the first message is the one the admin fixes.
// Nil roles means every role. The files the process itself reads at the
// start (startFileProblems), its listeners (listenProblems), the addresses
// of the roles it calls elsewhere (peerProblems) and its trace export
// (otlpProblems) are checked too.
func Validate(cfg *config.Config, report *config.Report, roles []string) []config.Problem {
	reported := map[string]bool{}
	if report != nil {
		for _, p := range report.Errors() {
			reported[p.Key] = true
		}
	}
	var out []config.Problem
	for _, p := range slices.Concat(startFileProblems(cfg), listenProblems(cfg, roles, machineEnv), peerProblems(cfg, roles), otlpProblems(cfg)) {
		if !reported[p.Key] {
			out = append(out, p)
		}
	}
	return append(out, rolesValidate(cfg, reported, roles)...)
}

// otlpProblems is telemetry.CheckOTLP on the file's trace export with the
// process's environment, which the exporter reads at the start.
func otlpProblems(cfg *config.Config) []config.Problem {
	t := cfg.Segmesh.Telemetry
	return telemetry.CheckOTLP(telemetry.Options{OTLPEndpoint: t.OTLPEndpoint, OTLPInsecure: t.OTLPInsecure}, os.Getenv)
}

// rolesValidate is Validate without the start's files: the named roles'
// Validate, leaving out a role's error on a key in reported.
func rolesValidate(cfg *config.Config, reported map[string]bool, roles []string) []config.Problem {
	vs := Validators()
	if roles == nil {
		roles = role.KnownNames(Constructors())
	}
	var out []config.Problem
	for _, name := range roles {
		v, ok := vs[name]
		if !ok {
			continue
		}
		for _, p := range v(cfg) {
			if reported[p.Key] && p.Severity == config.SeverityError {
				continue
			}
			if !slices.ContainsFunc(out, p.Same) {
				out = append(out, p)
			}
		}
	}
	return out
}
