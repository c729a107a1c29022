package edge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
)

// Failure is a request failure with its two audiences: Status (and
// RetryAfter) for the device, Reason, Fix and Err for the log. It is the one
// place a failure becomes an HTTP status.
type Failure struct {
	// Status is the HTTP status the device gets.
	Status int
	// RetryAfter is the Retry-After in seconds; 0 sends none.
	RetryAfter int
	// Reason says what failed, for the log.
	Reason string
	// Fix says what an administrator can do; empty when nothing.
	Fix string
	// Err is the cause; nil when there is none.
	Err error
	// Close ends the device's connection with the answer (Connection:
	// close; a graceful GOAWAY on HTTP/2): every later request on it would
	// be refused the same way.
	Close bool
}

// Error describes the failure for the log. It never holds a credential.
func (f *Failure) Error() string {
	s := "edge: " + f.Reason
	if f.Err != nil {
		s += ": " + f.Err.Error()
	}
	if f.Fix != "" {
		s += "; fix: " + f.Fix
	}
	return s
}

// Unwrap returns the cause.
func (f *Failure) Unwrap() error { return f.Err }

// Sentinel causes the edge's own code returns; failureOf maps them.
var (
	// errNoCertificate means the request came without a verified client certificate.
	errNoCertificate = errors.New("no verified client certificate")
	// errNoUpstream means no Exchange URL is configured.
	errNoUpstream = errors.New("no Exchange upstream configured")
	// errReadBody means the device's request body could not be read.
	errReadBody = errors.New("read request body")
	// errPathNotForwarded means the path is under no configured prefix.
	errPathNotForwarded = errors.New("path not forwarded")
)

// failureOf maps any error on the request path to a Failure.
func failureOf(err error, retryAfter int) *Failure {
	var f *Failure
	if errors.As(err, &f) {
		return f
	}
	var te *TicketError
	var ie *IdentityError
	var cr *CertificateRefusal
	switch {
	case errors.Is(err, context.Canceled):
		// The device went away; the status is for the log only.
		return &Failure{Status: 499, Reason: "device closed the request", Err: err}
	case errors.Is(err, context.DeadlineExceeded):
		return &Failure{Status: http.StatusGatewayTimeout, Reason: "Exchange did not answer in time", Err: err}
	case errors.Is(err, errPathNotForwarded):
		return &Failure{Status: http.StatusNotFound, Reason: "path not forwarded", Fix: "add the prefix to segmesh.edge.paths if Exchange serves it"}
	case errors.As(err, &cr):
		// The refusal sticks for the connection's certificate: end the
		// connection on every path, as the parked one does
		// (TestAttackRevokedHeldPingClosesTheConnection).
		return &Failure{Status: http.StatusForbidden, Reason: "client certificate refused since the connection opened", Err: err, Close: true}
	case errors.Is(err, errNoCertificate):
		return &Failure{Status: http.StatusForbidden, Reason: "request without a valid client certificate", Fix: "enrol the device with a certificate from a trusted CA", Err: err}
	case errors.Is(err, errReadBody):
		return &Failure{Status: http.StatusBadRequest, Reason: "request body shorter than its Content-Length or broken off", Err: err}
	case errors.Is(err, errResponseHeadersTooLarge):
		return &Failure{Status: http.StatusBadGateway, Reason: "Exchange's response headers exceed the limit", Fix: "check what sits between segmesh and Exchange (a proxy adding headers)", Err: err}
	case errors.Is(err, errNoNegotiate):
		return &Failure{Status: http.StatusServiceUnavailable, RetryAfter: retryAfter, Reason: "no Kerberos header could be built; the request was not sent to Exchange",
			Fix: "see the \"build Negotiate header\" log line: the ticket's encryption type or session key is unusable; check the ticket role and the service account's encryption types", Err: err}
	case errors.Is(err, errRelayBusy):
		return &Failure{Status: http.StatusServiceUnavailable, RetryAfter: retryAfter, Reason: "every relay connection to Exchange is in use",
			Fix: "raise segmesh.edge.relayMaxConnsPerHost if Exchange can take more connections, or add Exchange servers", Err: err}
	case errors.Is(err, errNoUpstream):
		return &Failure{Status: http.StatusServiceUnavailable, RetryAfter: retryAfter, Reason: "no Exchange upstream", Fix: "set segmesh.edge.exchangeUrls", Err: err}
	case errors.As(err, &ie):
		if ie.Unavailable {
			return &Failure{Status: http.StatusServiceUnavailable, RetryAfter: retryAfter, Reason: "identity role unavailable", Fix: "check the identity role and its directory", Err: err}
		}
		return &Failure{Status: http.StatusForbidden, Reason: "certificate maps to no user", Fix: ie.Hint, Err: err}
	case errors.As(err, &te):
		if te.Unavailable {
			return &Failure{Status: http.StatusServiceUnavailable, RetryAfter: retryAfter, Reason: "no service ticket: KDC or ticket role unavailable", Fix: "check the ticket role and the domain controllers", Err: err}
		}
		return &Failure{Status: http.StatusForbidden, Reason: "no service ticket for the user", Fix: te.Hint, Err: err}
	}
	return &Failure{Status: http.StatusBadGateway, Reason: "Exchange unreachable", Fix: "check segmesh.edge.exchangeUrls, DNS and the Exchange CA (segmesh.edge.exchangeCaFile)", Err: err}
}

// writeFailure sends f's plain status to the device. The body is the status
// text only: causes and hints go to the log.
func writeFailure(w http.ResponseWriter, f *Failure) {
	if f.Status == 499 {
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	if f.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(f.RetryAfter))
	}
	if f.Close {
		h.Set("Connection", "close")
	}
	w.WriteHeader(f.Status)
	_, _ = fmt.Fprintln(w, http.StatusText(f.Status))
}

// LogValue gives the failure's log attributes.
func (f *Failure) LogValue() slog.Value {
	attrs := []slog.Attr{slog.Int("status", f.Status), slog.String("reason", f.Reason)}
	if f.Err != nil {
		attrs = append(attrs, slog.String("cause", f.Err.Error()))
	}
	if f.Fix != "" {
		attrs = append(attrs, slog.String("fix", f.Fix))
	}
	return slog.GroupValue(attrs...)
}
