package ticket

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/segmesh/segmesh/pkg/kdc"
	"github.com/segmesh/segmesh/pkg/krbhint"
	"github.com/segmesh/segmesh/pkg/s4u"
	ticketv1 "github.com/segmesh/segmesh/proto/segmesh/ticket/v1"
)

// grpcCode maps what a Kerberos error code means (pkg/krbhint's class) to a
// gRPC code: the one place the ticket role decides what a KDC answer means
// to its callers.
func grpcCode(class krbhint.Class) codes.Code {
	switch class {
	case krbhint.ClassNotFound:
		return codes.NotFound // no such user
	case krbhint.ClassSetup:
		return codes.FailedPrecondition // a setting must change
	case krbhint.ClassRefused:
		return codes.PermissionDenied // not delegable, disabled, restricted
	case krbhint.ClassCrypto:
		return codes.Internal // keys or checksums disagree
	case krbhint.ClassUnavailable:
		return codes.Unavailable // clock skew, KDC overloaded
	}
	return codes.Unknown
}

// toStatus turns an issuance failure into a gRPC status carrying a
// KDCErrorDetail with the code, stage and hint.
func toStatus(err error, realm string) error {
	var ke *s4u.KDCError
	var wc *s4u.WrongClientError
	var se *s4u.SessionKeyError
	var ue *kdc.UnreachableError
	switch {
	case errors.As(err, &ke):
		code := grpcCode(krbhint.ClassOf(ke.Code))
		if ke.Temporary() {
			code = codes.Unavailable
		}
		return withDetail(code, err.Error(), &ticketv1.KDCErrorDetail{
			Code: ke.Code, Name: ke.Name, Stage: string(ke.Stage), Hint: ke.Hint, Realm: ke.Realm,
		})
	case errors.As(err, &wc):
		return withDetail(codes.FailedPrecondition, err.Error(), &ticketv1.KDCErrorDetail{
			Stage: string(wc.Stage), Realm: realm,
			Hint: "the KDC answered with a ticket for " + wc.Got + " instead of " + wc.Want + ": " + krbhint.FixWrongClient,
		})
	case errors.As(err, &se):
		return withDetail(codes.FailedPrecondition, err.Error(), &ticketv1.KDCErrorDetail{
			Stage: string(se.Stage), Realm: se.Realm, Hint: se.Hint,
		})
	case errors.As(err, &ue):
		return withDetail(codes.Unavailable, err.Error(), &ticketv1.KDCErrorDetail{
			Realm: ue.Realm, Hint: "no domain controller of the realm answered: " + krbhint.FixDomainControllers,
		})
	case errors.Is(err, context.DeadlineExceeded):
		return withDetail(codes.Unavailable, err.Error(), &ticketv1.KDCErrorDetail{Realm: realm, Hint: "the KDC did not answer in time"})
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	}
	if s4u.IsTemporary(err) {
		return status.Error(codes.Unavailable, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}

func withDetail(code codes.Code, msg string, d *ticketv1.KDCErrorDetail) error {
	st, err := status.New(code, msg).WithDetails(d)
	if err != nil {
		return status.Error(code, fmt.Sprintf("%s (%s)", msg, d.GetHint()))
	}
	return st.Err()
}

// DetailOf returns the KDCErrorDetail of a status error from GetServiceTicket, if any.
func DetailOf(err error) *ticketv1.KDCErrorDetail {
	st, ok := status.FromError(err)
	if !ok {
		return nil
	}
	for _, d := range st.Details() {
		if kd, ok := d.(*ticketv1.KDCErrorDetail); ok {
			return kd
		}
	}
	return nil
}
