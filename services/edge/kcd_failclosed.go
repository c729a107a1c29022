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

// connectionAuth reports whether the Authorization values vs use a scheme
// that authenticates the TCP connection at IIS rather than the request:
// anything but Basic and Bearer (NTLM, Negotiate and Kerberos under IIS's
// default authPersistNonNTLM=true). With KCD off the device's own
// Authorization goes to Exchange; an upstream connection that carried
// such a header is Exchange's connection of that user from then on, and
// given back to the pool every device shares it would serve the next
// device's request, sent without Authorization, as that user. Such a
// request is sent with Connection: close and its connection never reused,
// on both engines (TestAttackPassthroughConnectionAuthShared). NTLM's
// handshake then cannot complete through the edge (its legs need one
// connection): segmesh does KCD, not password pass-through.
func connectionAuth(vs []string) bool {
	for _, v := range vs {
		scheme, _, _ := strings.Cut(strings.TrimSpace(v), " ")
		if !strings.EqualFold(scheme, "Basic") && !strings.EqualFold(scheme, "Bearer") {
			return true
		}
	}
	return false
}
