package kdc

import (
	"errors"
	"fmt"
	"strings"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/messages"

	"github.com/segmesh/segmesh/pkg/dnssrv"
)

// ErrUnknownRealm is returned when no KDC address is configured for a realm.
var ErrUnknownRealm = errors.New("kdc: no KDC configured for realm")

// KRBError is a KRB-ERROR message a KDC answered with. It is a definitive
// answer from the realm: the transport does not fail over to the next KDC,
// except for KDC_ERR_SVC_UNAVAILABLE (then it is found inside the
// *UnreachableError when no KDC answered otherwise).
type KRBError struct {
	// Realm is the realm the request was sent to.
	Realm string
	// KDC is the address (host:port) of the KDC that answered.
	KDC string
	// Msg is the decoded KRB-ERROR.
	Msg messages.KRBError
}

// Code returns the Kerberos error code (RFC 4120 section 7.5.9).
func (e *KRBError) Code() int32 { return e.Msg.ErrorCode }

// Error returns the code, its RFC name and the KDC's e-text. None of these
// carry secrets.
func (e *KRBError) Error() string {
	s := fmt.Sprintf("kdc: realm %s answered %s (%d)", e.Realm, errorcode.Lookup(e.Msg.ErrorCode), e.Msg.ErrorCode)
	if e.Msg.EText != "" {
		s += ": " + sanitize(e.Msg.EText)
	}
	return s
}

// ReplyTypeError is a KDC reply that is not the answer to the request sent:
// not a Kerberos message, or a message of another type. The transport
// counts it as a failed attempt and tries the next KDC.
type ReplyTypeError struct {
	// Realm and KDC say who sent it.
	Realm, KDC string
	// Want is the expected message type (0: any KDC reply); Got the one
	// received (0: not a Kerberos message).
	Want, Got int
}

// Error names the types (no message content).
func (e *ReplyTypeError) Error() string {
	if e.Got == 0 {
		return fmt.Sprintf("kdc: realm %s: KDC %s sent a reply that is not a Kerberos message", e.Realm, e.KDC)
	}
	return fmt.Sprintf("kdc: realm %s: KDC %s sent message type %d, want %d", e.Realm, e.KDC, e.Got, e.Want)
}

// AttemptError is the failure of one KDC address.
type AttemptError struct {
	// Addr is the KDC address (host:port) that was tried.
	Addr string
	// Network is "tcp" or "udp".
	Network string
	// Err is what went wrong (dial, write, read, timeout, malformed reply).
	Err error
}

// Error describes the failed attempt.
func (e *AttemptError) Error() string {
	return fmt.Sprintf("%s %s: %v", e.Network, e.Addr, e.Err)
}

// Unwrap returns the underlying failure.
func (e *AttemptError) Unwrap() error { return e.Err }

// UnreachableError reports that no KDC of a realm gave an answer: every
// configured address failed to connect, timed out or sent a malformed reply,
// or the caller's context ended first.
type UnreachableError struct {
	// Realm is the realm whose KDCs were tried.
	Realm string
	// Attempts lists each failed attempt in order.
	Attempts []*AttemptError
	// Cause is the caller's context error when the context ended the
	// exchange; nil otherwise.
	Cause error
	// Discovery is why DNS gave no KDC for a realm configured without a
	// domain controller (a *dnssrv.LookupError, or a
	// *dnssrv.OutsideDomainError when DNS named only KDCs outside the
	// realm's DNS domain); nil otherwise.
	Discovery error
}

// Error lists the realm and every failed attempt.
func (e *UnreachableError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "kdc: no KDC of realm %s answered", e.Realm)
	if e.Cause != nil {
		fmt.Fprintf(&b, " (%v)", e.Cause)
	}
	var outside *dnssrv.OutsideDomainError
	switch {
	case errors.As(e.Discovery, &outside):
		fmt.Fprintf(&b, ": no KDC found in DNS: %v: if the realm's domain controllers are named outside %s (a disjoint namespace), write them in kcd.domains[].domainController; otherwise check the _kerberos._tcp.%s records and segmesh.dnsServer", e.Discovery, outside.Domain, e.Realm)
	case e.Discovery != nil:
		fmt.Fprintf(&b, ": no KDC found in DNS: %v: publish _kerberos._tcp.%s SRV records, name the DNS server that holds them in segmesh.dnsServer, or write the domain controller in kcd.domains[].domainController", e.Discovery, e.Realm)
	}
	for i, a := range e.Attempts {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(a.Error())
	}
	return b.String()
}

// Unwrap returns the context error (if any) and the attempt errors, so
// errors.Is(err, context.DeadlineExceeded) works.
func (e *UnreachableError) Unwrap() []error {
	errs := make([]error, 0, len(e.Attempts)+2)
	if e.Cause != nil {
		errs = append(errs, e.Cause)
	}
	if e.Discovery != nil {
		errs = append(errs, e.Discovery)
	}
	for _, a := range e.Attempts {
		errs = append(errs, a)
	}
	return errs
}

// Temporary reports whether retrying later may succeed; it always does for
// an unreachable realm.
func (e *UnreachableError) Temporary() bool { return true }

// sanitize keeps KDC-provided text printable and short.
func sanitize(s string) string {
	const max = 200
	if len(s) > max {
		s = s[:max]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}
