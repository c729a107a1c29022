package rpc

import (
	"context"
	"crypto/x509"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/segmesh/segmesh/pkg/upn"
)

// AllowList admits callers whose identity is one of the listed ones. An
// identity is a URI SAN (spiffe://corp/segmesh/edge) or a DNS SAN
// (edge.segmesh.svc), taken from the caller's verified client certificate
// (NewAllowList) or, behind a service mesh's sidecar, from the
// x-forwarded-client-cert element the sidecar appended (NewMeshAllowList).
// Identities compare without regard to ASCII case only (upn.FoldASCII):
// Unicode case mapping would let U+212A (Kelvin sign) pass for "k".
// Health checks are always admitted so probes work. An empty list admits
// nobody: whoever reaches the ticket role's port and passes the list gets any
// user's ticket and session key, so there is no "any verified peer" default.
type AllowList struct {
	ids  map[string]bool
	mesh bool
}

// NewAllowList builds an allow-list checked against the caller's verified
// mTLS certificate; an empty list refuses every call but health checks.
func NewAllowList(ids []string) *AllowList {
	a := &AllowList{ids: map[string]bool{}}
	for _, id := range ids {
		if id = strings.TrimSpace(id); id != "" {
			a.ids[upn.FoldASCII(id)] = true
		}
	}
	return a
}

// NewMeshAllowList builds an allow-list checked against the identity a mesh
// sidecar vouches for: the URI and DNS values of the last element of the
// x-forwarded-client-cert header (Envoy's APPEND_FORWARD, Istio's sidecar
// default, appends the element describing the peer it terminated mTLS for;
// earlier elements come from the caller and are not trusted). It is safe
// only when the mesh refuses plaintext to this port (Istio PeerAuthentication
// STRICT): a plaintext caller's header would be forwarded unchanged.
func NewMeshAllowList(ids []string) *AllowList {
	a := NewAllowList(ids)
	a.mesh = true
	return a
}

// Identities returns the identities a certificate presents: its URI SANs and DNS SANs.
func Identities(c *x509.Certificate) []string {
	var out []string
	for _, u := range c.URIs {
		out = append(out, u.String())
	}
	out = append(out, c.DNSNames...)
	return out
}

// callerIdentities returns the caller's identities in ctx, or a
// PERMISSION_DENIED error when there is none to check.
func (a *AllowList) callerIdentities(ctx context.Context) ([]string, error) {
	if a.mesh {
		md, _ := metadata.FromIncomingContext(ctx)
		ids := MeshIdentities(md.Get(XFCCHeader))
		if len(ids) == 0 {
			return nil, status.Error(codes.PermissionDenied, "caller has no mesh identity ("+XFCCHeader+" without URI or DNS): is the sidecar's mTLS STRICT on this port?")
		}
		return ids, nil
	}
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil, status.Error(codes.PermissionDenied, "no peer information")
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.VerifiedChains) == 0 || len(ti.State.VerifiedChains[0]) == 0 {
		return nil, status.Error(codes.PermissionDenied, "caller presented no verified client certificate")
	}
	return Identities(ti.State.VerifiedChains[0][0]), nil
}

// check returns nil when the caller in ctx is admitted.
func (a *AllowList) check(ctx context.Context, method string) error {
	if strings.HasPrefix(method, "/grpc.health.v1.Health/") {
		return nil
	}
	ids, err := a.callerIdentities(ctx)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if a.ids[upn.FoldASCII(id)] {
			return nil
		}
	}
	return status.Errorf(codes.PermissionDenied, "caller %v is not in segmesh.grpc.allowedPeers for %s", ids, method)
}

// UnaryInterceptor refuses unary calls from callers not on the list.
func (a *AllowList) UnaryInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if err := a.check(ctx, info.FullMethod); err != nil {
			return nil, err
		}
		return h(ctx, req)
	}
}

// StreamInterceptor refuses streams from callers not on the list.
func (a *AllowList) StreamInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		if err := a.check(ss.Context(), info.FullMethod); err != nil {
			return err
		}
		return h(srv, ss)
	}
}
