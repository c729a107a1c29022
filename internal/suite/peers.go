package suite

import (
	"fmt"
	"net"
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
			out = append(out, config.Problem{Severity: config.SeverityError, Key: "segmesh.peers." + name, Value: role.RedactTarget(role.PeerAddr(cfg, name)),
				Message: fmt.Sprintf("%v: the edge calls the %s role (%s), so the start would stop", err, name, why(name)),
				Fix:     fmt.Sprintf("set segmesh.peers.%s to the %s role's address (host:port, or dns:///name:port for several), or add %s to --roles", name, name, name)})
			continue
		}
		out = append(out, peerWarnings(cfg, name)...)
	}
	return out
}

// peerWarnings are what the edge's calls to a remote role would do that
// the start allows but an admin would not want unsaid: a target without a
// port (gRPC dials 443, where no role listens: every call fails), and a call
// that leaves this machine in plaintext (no segmesh.grpc.certFile, no mesh
// said to carry it): the ticket role answers with the user's service ticket
// and its session key, which whoever sees the traffic then holds. The
// listening side refuses plaintext beyond loopback itself (splitMode); this
// is the calling side's half.
func peerWarnings(cfg *config.Config, name string) []config.Problem {
	addr := role.PeerAddr(cfg, name)
	host, port, local, err := role.PeerEndpoint(addr)
	if err != nil {
		return nil // CheckPeer has said it
	}
	key := "segmesh.peers." + name
	var out []config.Problem
	if port == "" && host != "" {
		out = append(out, config.Problem{Severity: config.SeverityWarning, Key: key, Value: role.RedactTarget(addr),
			Message: fmt.Sprintf("the %s role's address names no port: gRPC dials %s, where no segmesh role listens, and every call to it fails", name, net.JoinHostPort(host, "443")),
			Fix:     fmt.Sprintf("write the port the %s role's segmesh.grpc.listen uses (host:9443, or dns:///name:9443)", name)})
	}
	g := cfg.Segmesh.GRPC
	if !local && g.CertFile == "" && !g.MeshProvidesMTLS {
		what := "user names and certificates"
		if name == role.Ticket {
			what = "users' service tickets with their session keys"
		}
		out = append(out, config.Problem{Severity: config.SeverityWarning, Key: key, Value: role.RedactTarget(addr),
			Message: fmt.Sprintf("the edge calls the %s role at %s in plaintext (segmesh.grpc.certFile is empty and segmesh.grpc.meshProvidesMtls is off): %s cross the network in clear", name, host, what),
			Fix:     "set segmesh.grpc.certFile, keyFile and caFile (mTLS between the roles), or segmesh.grpc.meshProvidesMtls when a service mesh's sidecar carries the call with mTLS"})
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
