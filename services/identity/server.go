package identity

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/segmesh/segmesh/pkg/certmap"
	identityv1 "github.com/segmesh/segmesh/proto/segmesh/identity/v1"
)

// server is the thin gRPC handler: proto types stop here.
type server struct {
	identityv1.UnimplementedIdentityServiceServer
	svc *Service
}

// MapCertificate implements identityv1.IdentityServiceServer.
func (s server) MapCertificate(ctx context.Context, req *identityv1.MapCertificateRequest) (*identityv1.MapCertificateResponse, error) {
	id, gen, err := s.svc.mapGen(ctx, req.GetCertificateDer())
	if err != nil {
		return nil, toStatus(ctx, err)
	}
	return &identityv1.MapCertificateResponse{
		Upn:    id.UPN.String(),
		Realm:  id.UPN.Realm,
		Source: toSource(id.Source),
		UserDn: id.DN,
		Cached: id.Cached,

		MappingGeneration: gen,
	}, nil
}

// MappingGeneration implements identityv1.IdentityServiceServer.
func (s server) MappingGeneration(context.Context, *identityv1.MappingGenerationRequest) (*identityv1.MappingGenerationResponse, error) {
	return &identityv1.MappingGenerationResponse{MappingGeneration: s.svc.Generation()}, nil
}

// toSource maps a certmap.Source to the API's enum. A UPN found through
// altSecurityIdentities or the login identity's directory search came from
// the directory: LDAP_MAPPING.
func toSource(src certmap.Source) identityv1.UPNSource {
	switch src {
	case certmap.SourceLDAP, certmap.SourceAltSecurityIdentities, certmap.SourceLoginIdentity:
		return identityv1.UPNSource_UPN_SOURCE_LDAP_MAPPING
	case certmap.SourceSAN:
		return identityv1.UPNSource_UPN_SOURCE_CERTIFICATE_SAN
	}
	return identityv1.UPNSource_UPN_SOURCE_UNSPECIFIED
}

// toStatus is the one place the role decides what a failure means to its
// callers. The message carries the cause and fix for the caller's log; the
// edge shows the device a plain refusal.
func toStatus(ctx context.Context, err error) error {
	var re *certmap.RefusedError
	var ic *InvalidCertificateError
	switch {
	case ctx.Err() != nil:
		return status.FromContextError(ctx.Err()).Err()
	case errors.Is(err, errKCDOff):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.As(err, &ic):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.As(err, &re) && re.Unavailable:
		return status.Error(codes.Unavailable, err.Error())
	case errors.As(err, &re):
		return status.Error(codes.PermissionDenied, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}
