//go:build lab

package edge

import "github.com/segmesh/segmesh/pkg/role"

// TunedConstructor is Constructor with tune applied to the derived
// configuration, so the lab tests (package edge_test) can make the
// listener's timeouts short.
func TunedConstructor(tune func(*Config)) role.Constructor {
	return func(deps role.Deps) (role.Role, error) { return newService(deps, options{tune: tune}) }
}

// SyncBuffer is the log buffer the roles and a lab test share.
type SyncBuffer = syncBuffer
