package s4u

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/jcmturner/gofork/encoding/asn1"

	"github.com/segmesh/segmesh/pkg/kdc"
	"github.com/segmesh/segmesh/pkg/krbhint"
)

// Stage names the exchange a failure happened in; the stages are
// pkg/krbhint's, whose catalogue gives the fix per stage.
type Stage = krbhint.Stage

// Stages of obtaining a ticket.
const (
	// StageASReq is the service account's AS exchange for its TGT.
	StageASReq = krbhint.StageASReq
	// StageReferral is a TGS exchange for a cross-realm TGT, or the
	// S4U2Self referral leg in the user's realm.
	StageReferral = krbhint.StageReferral
	// StageS4U2Self is protocol transition: a ticket to the service account
	// for the user.
	StageS4U2Self = krbhint.StageS4U2Self
	// StageS4U2Proxy is constrained delegation: a ticket to the target SPN
	// for the user.
	StageS4U2Proxy = krbhint.StageS4U2Proxy
)

// UnreachableError reports that no KDC of a realm answered; it is
// temporary (retryable).
type UnreachableError = kdc.UnreachableError

// KDCError is a KRB-ERROR a KDC answered with, with the stage it answered
// and a hint for the administrator.
type KDCError struct {
	// Code is the Kerberos error code (RFC 4120 section 7.5.9).
	Code int32
	// Name is the code's RFC name, e.g. KDC_ERR_BADOPTION.
	Name string
	// Hint says in an administrator's words what usually causes the code at
	// this stage and how to fix it; empty when there is no specific advice.
	Hint string
	// Stage is the exchange that failed.
	Stage Stage
	// Realm is the realm whose KDC answered.
	Realm string
	// KDC is the address of the KDC that answered.
	KDC string
	// EText is the KDC's own text, if any.
	EText string
	// NTStatus is the Windows status code AD KDCs (Windows, Samba) put in
	// the error's e-data (KERB-EXT-ERROR, MS-KILE 2.2.2), e.g. 0xC0000070
	// STATUS_INVALID_WORKSTATION when an authentication policy's
	// AllowedToAuthenticateFrom refuses an AS exchange that is not
	// armoured; zero when there is none. Error shows it.
	NTStatus uint32
	// NotForwardable is set on an S4U2Proxy refusal whose evidence (the
	// S4U2Self ticket) was not forwardable: protocol transition is off for
	// the service account, or the user cannot be delegated
	// (krbhint.NotForwardable).
	NotForwardable bool
	// Unarmoured is set on an error that answered an armoured (FAST) AS-REQ
	// outside the armour: nothing in it is authenticated, so it was not
	// acted on (no salt, etype or KDC time taken from it), as MIT's client
	// does not act on it (RFC 6113 section 5.4.4). Error says so.
	Unarmoured bool

	err *kdc.KRBError
}

// Error returns the stage, realm, code, name and hint.
func (e *KDCError) Error() string {
	s := fmt.Sprintf("s4u: %s in realm %s: %s (%d)", e.Stage, e.Realm, e.Name, e.Code)
	if e.EText != "" {
		s += " [" + e.EText + "]"
	}
	if e.NTStatus != 0 {
		s += fmt.Sprintf(" NTSTATUS %#08x", e.NTStatus)
	}
	if e.Unarmoured {
		s += ", not armoured although the request was (FAST), so it is taken as the KDC's final answer and not acted on: " +
			"the KDC does not do FAST for this request (check segmesh.ticket.armorAccountUserName and the armor account's TGT), " +
			"or the answer was forged on the path to the KDC"
	}
	if e.Hint != "" {
		s += ": " + e.Hint
	}
	return s
}

// Unwrap returns the transport's *kdc.KRBError.
func (e *KDCError) Unwrap() error {
	if e.err == nil {
		return nil
	}
	return e.err
}

// Is reports whether target is a *KDCError with the same code (or code 0)
// and the same stage (or no stage), so errors.Is(err, &KDCError{Code: 6})
// matches any C_PRINCIPAL_UNKNOWN.
func (e *KDCError) Is(target error) bool {
	t, ok := target.(*KDCError)
	if !ok {
		return false
	}
	return (t.Code == 0 || t.Code == e.Code) && (t.Stage == "" || t.Stage == e.Stage)
}

// Temporary reports whether retrying later may succeed (krbhint.Temporary).
// KDC answers such as C_PRINCIPAL_UNKNOWN, BADOPTION or CLIENT_REVOKED are
// definitive.
func (e *KDCError) Temporary() bool { return krbhint.Temporary(e.Code) }

// ErrWrongClient is matched (errors.Is) by a *WrongClientError.
var ErrWrongClient = errors.New("s4u: KDC returned a ticket for another client")

// WrongClientError reports a reply whose client is not the user asked for.
// A KDC that does not apply S4U (or applies it partially) silently returns a
// ticket for the service account itself; using it would authenticate every
// user as the service account. It is definitive.
type WrongClientError struct {
	// Stage is the exchange whose reply was refused.
	Stage Stage
	// Want is the client asked for, as name@realm.
	Want string
	// Got is the client in the reply, as name@realm.
	Got string
}

// Error names both clients (principal names are not secrets).
func (e *WrongClientError) Error() string {
	return fmt.Sprintf("s4u: %s reply is for %s, not the user %s: the KDC did not apply S4U (check protocol transition and constrained delegation on the service account)", e.Stage, e.Got, e.Want)
}

// Is matches ErrWrongClient.
func (e *WrongClientError) Is(target error) bool { return target == ErrWrongClient }

// Temporary reports false: the KDC will answer the same way again.
func (e *WrongClientError) Temporary() bool { return false }

// IsTemporary reports whether err (or an error it wraps) says retrying later
// may succeed: an unreachable realm, a context deadline, or a transient KDC
// code. Definitive KDC answers and configuration errors report false.
func IsTemporary(err error) bool {
	var t interface{ Temporary() bool }
	if errors.As(err, &t) {
		return t.Temporary()
	}
	return false
}

// newKDCError converts a transport error into a *KDCError when it is a
// KRB-ERROR, and wraps it with the stage otherwise.
func newKDCError(stage Stage, realm string, err error) error {
	var ke *kdc.KRBError
	if !errors.As(err, &ke) {
		return fmt.Errorf("s4u: %s in realm %s: %w", stage, realm, err)
	}
	code := ke.Code()
	return &KDCError{
		Code:  code,
		Name:  CodeName(code),
		Hint:  Hint(stage, code),
		Stage: stage,
		Realm: ke.Realm,
		KDC:   ke.KDC,
		EText: ke.Msg.EText,
		err:   ke,

		NTStatus: ntStatus(ke.Msg.EData),
	}
}

// kerbErrorData is KERB-ERROR-DATA (MS-KILE 2.2.1), the e-data of AD KDCs'
// errors.
type kerbErrorData struct {
	DataType  int32  `asn1:"explicit,tag:1"`
	DataValue []byte `asn1:"explicit,optional,tag:2"`
}

// kerbErrTypeExtended is KERB_ERR_TYPE_EXTENDED: data-value is
// KERB-EXT-ERROR, an NTSTATUS (little-endian) and 8 reserved/flag bytes.
const kerbErrTypeExtended = 3

// NTSTATUS codes Samba 4.22 sends with authentication policy refusals
// (recorded in the lab).
const (
	// StatusInvalidWorkstation: the account may not authenticate from
	// here: an AllowedToAuthenticateFrom condition failed (the AS exchange
	// was not armoured, or by another computer), or userWorkstations.
	StatusInvalidWorkstation uint32 = 0xC0000070
	// StatusAuthenticationFirewallFailed: the target's
	// AllowedToAuthenticateTo does not allow the account.
	StatusAuthenticationFirewallFailed uint32 = 0xC0000413
)

// ntStatus returns the NTSTATUS of a KERB-EXT-ERROR e-data, or zero.
func ntStatus(edata []byte) uint32 {
	var d kerbErrorData
	if len(edata) == 0 {
		return 0
	}
	if rest, err := asn1.Unmarshal(edata, &d); err != nil || len(rest) != 0 ||
		d.DataType != kerbErrTypeExtended || len(d.DataValue) < 4 {
		return 0
	}
	return binary.LittleEndian.Uint32(d.DataValue)
}

// CodeName returns the RFC 4120 name of a Kerberos error code, such as
// KDC_ERR_BADOPTION, or "KRB_ERROR_<code>" for an unknown code.
func CodeName(code int32) string { return krbhint.Name(code) }

// Hint returns advice for an administrator for a Kerberos error code met at
// a stage, or "" when there is none: pkg/krbhint's catalogue, with the
// placeholders SVC and HTTP/host in its examples.
func Hint(stage Stage, code int32) string { return krbhint.Fix(stage, code) }
