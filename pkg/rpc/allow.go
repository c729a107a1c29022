package rpc

import (
	"context"
	"crypto/x509"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// AllowList admits callers whose verified certificate carries one of the
// identities. An identity is a URI SAN (spiffe://corp/segmesh/edge) or a DNS
// SAN (edge.segmesh.svc). Health checks are always admitted so probes work.
type AllowList struct {
	ids map[string]bool
}

// NewAllowList builds an allow-list; an empty list admits any caller with a
// certificate the server verified.
func NewAllowList(ids []string) *AllowList {
	a := &AllowList{ids: map[string]bool{}}
	for _, id := range ids {
		if id = strings.TrimSpace(id); id != "" {
			a.ids[strings.ToLower(id)] = true
		}
	}
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

// check returns nil when the caller in ctx is admitted.
func (a *AllowList) check(ctx context.Context, method string) error {
	if strings.HasPrefix(method, "/grpc.health.v1.Health/") {
		return nil
	}
	p, ok := peer.FromContext(ctx)
	if !ok {
		return status.Error(codes.PermissionDenied, "no peer information")
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.VerifiedChains) == 0 || len(ti.State.VerifiedChains[0]) == 0 {
		return status.Error(codes.PermissionDenied, "caller presented no verified client certificate")
	}
	leaf := ti.State.VerifiedChains[0][0]
	if len(a.ids) == 0 {
		return nil
	}
	ids := Identities(leaf)
	for _, id := range ids {
		if a.ids[strings.ToLower(id)] {
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
