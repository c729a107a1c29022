package ticket

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/segmesh/segmesh/pkg/kdc"
	"github.com/segmesh/segmesh/pkg/s4u"
	ticketv1 "github.com/segmesh/segmesh/proto/segmesh/ticket/v1"
)

// kdcCodes maps definitive Kerberos error codes to gRPC codes: the one place
// the ticket role decides what a KDC answer means to its callers.
var kdcCodes = map[int32]codes.Code{
	6:  codes.NotFound,           // C_PRINCIPAL_UNKNOWN: no such user
	7:  codes.FailedPrecondition, // S_PRINCIPAL_UNKNOWN: SPN missing
	12: codes.PermissionDenied,   // POLICY: account disabled or restricted
	13: codes.PermissionDenied,   // BADOPTION: not delegable
	14: codes.FailedPrecondition, // ETYPE_NOSUPP
	18: codes.PermissionDenied,   // CLIENT_REVOKED: disabled or locked
	24: codes.FailedPrecondition, // PREAUTH_FAILED: wrong service password
	25: codes.FailedPrecondition, // PREAUTH_REQUIRED
	31: codes.Internal,           // AP_ERR_BAD_INTEGRITY
	36: codes.FailedPrecondition, // AP_ERR_BADMATCH
	37: codes.Unavailable,        // AP_ERR_SKEW: clock skew
	41: codes.Internal,           // AP_ERR_MODIFIED
	50: codes.Internal,           // AP_ERR_INAPP_CKSUM
}

// toStatus turns an issuance failure into a gRPC status carrying a
// KDCErrorDetail with the code, stage and hint.
func toStatus(err error, realm string) error {
	var ke *s4u.KDCError
	var wc *s4u.WrongClientError
	var ue *kdc.UnreachableError
	switch {
	case errors.As(err, &ke):
		code, ok := kdcCodes[ke.Code]
		if !ok {
			code = codes.Unknown
		}
		if ke.Temporary() {
			code = codes.Unavailable
		}
		return withDetail(code, err.Error(), &ticketv1.KDCErrorDetail{
			Code: ke.Code, Name: ke.Name, Stage: string(ke.Stage), Hint: ke.Hint, Realm: ke.Realm,
		})
	case errors.As(err, &wc):
		return withDetail(codes.FailedPrecondition, err.Error(), &ticketv1.KDCErrorDetail{
			Stage: string(wc.Stage), Realm: realm,
			Hint: "the KDC answered with a ticket for " + wc.Got + " instead of " + wc.Want +
				"; it does not apply S4U for this account: check that the service account has protocol transition (TrustedToAuthForDelegation) and the target SPN in msDS-AllowedToDelegateTo",
		})
	case errors.As(err, &ue):
		return withDetail(codes.Unavailable, err.Error(), &ticketv1.KDCErrorDetail{
			Realm: ue.Realm, Hint: "no domain controller of the realm answered: check kcd.domains, DNS and that TCP 88 is open",
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
