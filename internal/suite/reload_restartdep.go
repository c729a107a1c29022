package suite

import (
	"fmt"
	"slices"
	"strings"

	"github.com/segmesh/segmesh/pkg/config"
)

// restartDependents returns the errors config.Load's rules (config.Rules)
// and the roles' Validate find in toRoles (next with the settings waiting
// for a restart put back at their running values) and not in next itself:
// a live setting saved with a setting it depends on that takes a restart in
// this process (a UPN suffix in upnSuffixRealms mapped to a domain added to
// kcd.domains while kcd.domains takes a restart; a mapping URL removed, or
// given ldaps:// on port 389, while cert.mapping.enabled is turned off; an
// Exchange URL holding /EWS while segmesh.edge.paths, which drops /EWS,
// waits for a restart). toRoles is what the roles would hold, so the
// process would run a combination `config check` refuses, and the roles
// would be checked against the running value and refuse with a reason that
// contradicts the file. The reload refuses first, naming both settings and
// the fix; no role is asked to prepare (no proving bind or AS exchange for
// a save that cannot apply). waiting lists the settings that wait for a
// restart and a role of the process uses; running is the configuration the
// roles were built from. The files the process reads at
// the start (startFileProblems) are left to load, which checks the new
// file as a restart would: they are no combination of settings.
func restartDependents(next, toRoles, running *config.Config, waiting, roles []string) []config.Problem {
	if len(waiting) == 0 {
		return nil
	}
	// A problem the configuration in force already has is none this save
	// makes (only a start adjusted past config.Load, as in tests, has one).
	asSaved := append(append(config.Rules(next), rolesValidate(next, nil, roles)...), config.Rules(running)...)
	names := strings.Join(waiting, ", ")
	verb := "changes it"
	if len(waiting) > 1 {
		verb = "changes them"
	}
	var out []config.Problem
	for _, p := range append(config.Rules(toRoles), rolesValidate(toRoles, nil, roles)...) {
		if p.Severity != config.SeverityError || slices.ContainsFunc(asSaved, p.Same) || slices.ContainsFunc(out, p.Same) {
			continue
		}
		p.Message = fmt.Sprintf("%s (checked against the running %s: this save %s too, but in this process it takes a restart, "+
			"so the live settings cannot be applied with it)", p.Message, names, verb)
		p.Fix = fmt.Sprintf("restart segmesh to apply the whole save (systemctl restart segmesh; in Kubernetes a rollout restart); "+
			"or, to apply the rest live now, save without the change to %s (%s then waits for a restart) "+
			"and save %s again after the restart that applies %s", p.Key, names, p.Key, names)
		out = append(out, p)
	}
	return out
}
