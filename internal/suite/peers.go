package suite

import (
	"fmt"
	"slices"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/role"
	"github.com/segmesh/segmesh/services/edge"
)

// peerProblems returns what the start would refuse when the edge runs in
// this process and a role it calls (edge.Needs) does not: segmesh.peers has
// no address for it, or one grpc does not take (role.CheckPeer, what the
// group's Conn refuses). Nil roles (every role in this process, as `config
// check` without --roles assumes) call nobody elsewhere.
func peerProblems(cfg *config.Config, roles []string) []config.Problem {
	if roles == nil || !slices.Contains(roles, role.Edge) {
		return nil
	}
	var out []config.Problem
	for _, name := range edge.Needs(cfg) {
		if slices.Contains(roles, name) {
			continue
		}
		if err := role.CheckPeer(cfg, name); err != nil {
			out = append(out, config.Problem{Severity: config.SeverityError, Key: "segmesh.peers." + name, Value: role.PeerAddr(cfg, name),
				Message: fmt.Sprintf("%v: the edge calls the %s role (%s), so the start would stop", err, name, why(name)),
				Fix:     fmt.Sprintf("set segmesh.peers.%s to the %s role's address (host:port, or dns:///name:port for several), or add %s to --roles", name, name, name)})
		}
	}
	return out
}

// why names the setting that makes the edge call the named role.
func why(name string) string {
	if name == role.CRL {
		return "revocation checking is on"
	}
	return "kcd.enabled is true"
}
