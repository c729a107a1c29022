package suite

import (
	"github.com/segmesh/segmesh/pkg/role"
	"github.com/segmesh/segmesh/services/crl"
	"github.com/segmesh/segmesh/services/edge"
	"github.com/segmesh/segmesh/services/identity"
	"github.com/segmesh/segmesh/services/ticket"
)

// Constructors returns every role segmesh can run, by name.
func Constructors() map[string]role.Constructor {
	return map[string]role.Constructor{
		role.CRL:      crl.Constructor,
		role.Identity: identity.Constructor,
		role.Ticket:   ticket.Constructor,
		role.Edge:     edge.Constructor,
	}
}
