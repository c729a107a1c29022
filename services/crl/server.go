package crl

import (
	"context"
	"crypto/x509"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/segmesh/segmesh/pkg/crl"
	crlv1 "github.com/segmesh/segmesh/proto/segmesh/crl/v1"
)

// server is the thin gRPC handler: proto types stop here.
type server struct {
	crlv1.UnimplementedRevocationServiceServer
	svc *Service
}

// errStopping ends streams when the role stops; edges reconnect.
var errStopping = status.Error(codes.Unavailable, "crl role stopping")

// WatchSnapshots implements crlv1.RevocationServiceServer: the current
// snapshot at once unless the caller already holds that version, then every
// new one, in parts of at most rpc.MaxPartBytes when the caller accepts
// them. A slow reader skips intermediate versions, never the latest.
func (s server) WatchSnapshots(req *crlv1.WatchSnapshotsRequest, stream crlv1.RevocationService_WatchSnapshotsServer) error {
	snaps, cancel := s.svc.refresher.Subscribe()
	defer cancel()
	// Headers at once tell the edge the stream is up even when it holds the
	// current version and nothing follows for a day.
	if err := stream.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	known := req.GetKnownVersion()
	ctx := stream.Context()
	for {
		select {
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case <-s.svc.stopped:
			return errStopping
		case snap, ok := <-snaps:
			if !ok {
				return errStopping
			}
			if s.svc.wireVersion(snap) == known {
				continue
			}
			known = 0
			if !req.GetAcceptParts() {
				if err := stream.Send(s.svc.message(snap)); err != nil {
					return err
				}
				continue
			}
			for _, part := range s.svc.partsOf(snap, req.GetAcceptPacked()) {
				if err := stream.Send(part); err != nil {
					return err
				}
			}
		}
	}
}

// Check implements crlv1.RevocationServiceServer.
func (s server) Check(_ context.Context, req *crlv1.CheckRequest) (*crlv1.CheckResponse, error) {
	if len(req.GetCertificateDer()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "certificate_der is empty")
	}
	cert, err := x509.ParseCertificate(req.GetCertificateDer())
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "certificate_der: %v", err)
	}
	revoked, info, known, version := s.svc.Check(cert)
	resp := &crlv1.CheckResponse{
		Issuer:          cert.Issuer.String(),
		Serial:          cert.SerialNumber.Text(16),
		SnapshotVersion: version,
	}
	switch {
	case !known:
		resp.Status = crlv1.RevocationStatus_REVOCATION_STATUS_UNKNOWN
	case revoked && info.FailedClosed:
		resp.Status = crlv1.RevocationStatus_REVOCATION_STATUS_STALE_REFUSED
	case revoked:
		resp.Status = crlv1.RevocationStatus_REVOCATION_STATUS_REVOKED
		resp.RevokedAt = timestamppb.New(info.RevokedAt)
	default:
		resp.Status = crlv1.RevocationStatus_REVOCATION_STATUS_GOOD
	}
	if info.Issuer != "" {
		resp.Issuer = info.Issuer
	}
	return resp, nil
}

// message returns the wire form of snap, built once per snapshot and shared
// by every stream (a message is not modified after it is built, so
// concurrent marshalling is safe).
func (s *Service) message(snap *crl.Snapshot) *crlv1.WatchSnapshotsResponse {
	v := s.wireVersion(snap)
	s.msgMu.Lock()
	defer s.msgMu.Unlock()
	if s.msg != nil && s.msg.GetVersion() == v {
		return s.msg
	}
	s.msg = snapshotMessage(v, snap)
	return s.msg
}

// snapshotMessage converts snap into one message, for an edge that does not
// accept parts. The serial slices alias the indexes' immutable memory;
// nothing is copied.
func snapshotMessage(version uint64, snap *crl.Snapshot) *crlv1.WatchSnapshotsResponse {
	out := &crlv1.WatchSnapshotsResponse{Version: version}
	for _, ix := range snap.Indexes() {
		c := issuerHeader(ix)
		c.RevokedSerials = make([][]byte, 0, ix.Len())
		for serial := range ix.All() {
			c.RevokedSerials = append(c.RevokedSerials, serial)
		}
		out.Crls = append(out.Crls, c)
	}
	return out
}

// issuerHeader is the wire form of ix without its serials.
func issuerHeader(ix *crl.Index) *crlv1.IssuerCRL {
	m := ix.Meta()
	key := m.Key
	c := &crlv1.IssuerCRL{
		Issuer:      m.Issuer,
		IssuerKey:   key[:],
		SourceUrl:   m.Source,
		ThisUpdate:  timestamppb.New(m.ThisUpdate),
		Stale:       m.Stale,
		FailClosed:  m.FailClosed,
		SerialCount: uint32(ix.Len()),
		Partition:   m.Partition,
	}
	if m.Number != nil {
		c.CrlNumber = m.Number.String()
	}
	if !m.NextUpdate.IsZero() {
		c.NextUpdate = timestamppb.New(m.NextUpdate)
	}
	if !m.FetchedAt.IsZero() {
		c.FetchedAt = timestamppb.New(m.FetchedAt)
	}
	return c
}
