package ticket

import (
	"context"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	ticketv1 "github.com/segmesh/segmesh/proto/segmesh/ticket/v1"
)

// server is the thin gRPC handler: proto types stop here.
type server struct {
	ticketv1.UnimplementedTicketServiceServer
	svc *Service
}

// GetServiceTicket implements ticketv1.TicketServiceServer.
func (s server) GetServiceTicket(ctx context.Context, req *ticketv1.GetServiceTicketRequest) (*ticketv1.GetServiceTicketResponse, error) {
	user, spn := strings.TrimSpace(req.GetUserPrincipal()), strings.TrimSpace(req.GetTargetSpn())
	if user == "" {
		return nil, status.Error(codes.InvalidArgument, "user_principal is empty")
	}
	t, cached, err := s.svc.Ticket(ctx, user, spn)
	if err != nil {
		return nil, err
	}
	resp := &ticketv1.GetServiceTicketResponse{
		TicketDer:       t.DER,
		SessionKey:      t.SessionKey.KeyValue,
		SessionKeyEtype: t.SessionKey.KeyType,
		ClientName:      strings.Join(t.CName.NameString, "/"),
		ClientNameType:  t.CName.NameType,
		ClientRealm:     t.CRealm,
		Realm:           t.SRealm,
		AuthTime:        timestamppb.New(t.AuthTime),
		StartTime:       timestamppb.New(t.StartTime),
		EndTime:         timestamppb.New(t.EndTime),
		Cached:          cached,
	}
	if !t.RenewTill.IsZero() {
		resp.RenewTill = timestamppb.New(t.RenewTill)
	}
	return resp, nil
}

// Invalidate implements ticketv1.TicketServiceServer.
func (s server) Invalidate(_ context.Context, req *ticketv1.InvalidateRequest) (*ticketv1.InvalidateResponse, error) {
	if req.GetUserPrincipal() == "" {
		return nil, status.Error(codes.InvalidArgument, "user_principal is empty")
	}
	spn := req.GetTargetSpn()
	if spn != "" {
		canon, ok := s.svc.engine().issuable(spn, s.svc.now())
		if !ok {
			return &ticketv1.InvalidateResponse{}, nil
		}
		spn = canon
	}
	n := s.svc.cache.Invalidate(req.GetUserPrincipal(), spn)
	return &ticketv1.InvalidateResponse{Removed: int32(n)}, nil
}
