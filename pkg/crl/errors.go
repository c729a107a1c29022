package crl

import (
	"errors"
	"fmt"
)

// Kind classifies why a CRL was not accepted. Its String form is a stable,
// lower-case word suitable as a metric label.
type Kind int

// The kinds of CRL failure.
const (
	// KindFetch is a transport failure or an unexpected HTTP status.
	KindFetch Kind = iota + 1
	// KindTooLarge is a body over the configured size cap.
	KindTooLarge
	// KindMalformed is a body that is not a DER or PEM X.509 CRL.
	KindMalformed
	// KindUnsupported is a well-formed CRL of a kind segmesh does not use
	// (delta CRL, indirect CRL, unknown critical extension).
	KindUnsupported
	// KindUntrusted is a CRL whose issuer is not among the trusted CAs.
	KindUntrusted
	// KindSignature is a CRL whose signature no trusted CA of that name verifies.
	KindSignature
	// KindOlder is a CRL older than the one in force for the same source.
	KindOlder
	// KindStore is a failure reading or writing the on-disk copy.
	KindStore
	// KindPanic is a fetch or check that panicked (a parser or client
	// meeting bytes it did not expect); the panic is logged with its stack.
	KindPanic
)

// String returns the kind as a metric label.
func (k Kind) String() string {
	switch k {
	case KindFetch:
		return "fetch"
	case KindTooLarge:
		return "too_large"
	case KindMalformed:
		return "malformed"
	case KindUnsupported:
		return "unsupported"
	case KindUntrusted:
		return "untrusted"
	case KindSignature:
		return "signature"
	case KindOlder:
		return "older"
	case KindStore:
		return "store"
	case KindPanic:
		return "panic"
	default:
		return fmt.Sprintf("kind(%d)", int(k))
	}
}

// Error is why a CRL from one source was not accepted. Callers branch on
// Kind with errors.As.
type Error struct {
	// URL is the distribution point (or file) the CRL came from; empty when
	// the CRL was handed over without a source.
	URL string
	// Kind classifies the failure.
	Kind Kind
	// Issuer is the CRL issuer's distinguished name; empty when unknown.
	Issuer string
	// Err is the underlying cause.
	Err error
}

// Error describes the failure with the URL, the issuer and the cause.
func (e *Error) Error() string {
	s := "crl: "
	if e.URL != "" {
		s += e.URL + ": "
	}
	s += kindText(e.Kind)
	if e.Issuer != "" {
		s += " (issuer " + e.Issuer + ")"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

func kindText(k Kind) string {
	switch k {
	case KindFetch:
		return "download failed"
	case KindTooLarge:
		return "body over the size cap"
	case KindMalformed:
		return "not a valid CRL"
	case KindUnsupported:
		return "unsupported CRL"
	case KindUntrusted:
		return "CRL issuer is not a trusted CA"
	case KindSignature:
		return "CRL signature does not verify"
	case KindOlder:
		return "CRL is older than the one in force"
	case KindStore:
		return "CRL cache"
	case KindPanic:
		return "the fetch or the CRL's check panicked (logged with its stack)"
	default:
		return k.String()
	}
}

// WithURL returns err with its URL set when err is an *Error without one;
// other errors come back unchanged.
func WithURL(err error, url string) error {
	var e *Error
	if !errors.As(err, &e) || error(e) != err || e.URL != "" {
		return err // only a direct *Error is rewritten; wrapped ones keep their context
	}
	c := *e
	c.URL = url
	return &c
}
