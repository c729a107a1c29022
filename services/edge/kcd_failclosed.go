package edge

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// errNoNegotiate means a request would have gone to Exchange without the
// edge's Negotiate header. It is never sent: on a keep-alive connection of
// the shared upstream pool, IIS (authPersistNonNTLM=true by default) may
// still hold another user's authentication, so a request without
// Authorization could be served as that user.
var errNoNegotiate = errors.New("no Negotiate header for the request; not sent to Exchange")

// requireNegotiate returns errNoNegotiate (with the reason the header could
// not be built, when known) unless KCD is off or h carries exactly one
// Negotiate Authorization header. Every path to Exchange calls it last: the
// proxy's transport and the parked Ping's write.
func (s *Service) requireNegotiate(h http.Header, state *requestState) error {
	if !s.cfg.KCD {
		return nil
	}
	if v := h["Authorization"]; len(v) == 1 && strings.HasPrefix(v[0], "Negotiate ") {
		return nil
	}
	if state != nil && state.negotiateErr != nil {
		return fmt.Errorf("%w: %w", errNoNegotiate, state.negotiateErr)
	}
	return errNoNegotiate
}
