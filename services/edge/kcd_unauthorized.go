package edge

import (
	"context"
	"sync"
	"time"

	"github.com/segmesh/segmesh/pkg/telemetry"
)

// defaultUnauthorizedRefresh is how long after a 401 has cost a user a fresh
// ticket another 401 goes to the device as it is.
const defaultUnauthorizedRefresh = 5 * time.Minute

// refreshGate allows one fresh ticket after a 401 per user per interval.
// Without it, a device looping on a URL Exchange answers with 401 (a
// mailbox without EAS rights, a wrong SPN) drove an S4U2Self and an
// S4U2Proxy per request: each 401 dropped the ticket at the edge and the
// ticket role. Entries older than the interval are swept when the map
// grows past max; a full map of recent entries allows no refresh (the
// 401 reaches the device), so the map stays bounded.
type refreshGate struct {
	interval time.Duration
	max      int
	mu       sync.Mutex
	last     map[string]time.Time
}

func newRefreshGate(interval time.Duration, max int) *refreshGate {
	return &refreshGate{interval: interval, max: max, last: map[string]time.Time{}}
}

// allow reports whether upn may have a fresh ticket after a 401 at now, and
// if so records it.
func (g *refreshGate) allow(upn string, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if t, ok := g.last[upn]; ok && now.Sub(t) < g.interval {
		return false
	}
	if len(g.last) >= g.max {
		for u, t := range g.last {
			if now.Sub(t) >= g.interval {
				delete(g.last, u)
			}
		}
		if len(g.last) >= g.max {
			return false
		}
	}
	g.last[upn] = now
	return true
}

// refreshAfter401 decides what a 401 from Exchange to the request of state costs:
// within the interval of the user's last refresh, nothing (false: the 401
// goes to the device); otherwise the ticket is invalidated at the edge and
// the ticket role (true: the caller fetches a new one and retries once).
// Both outcomes are counted.
func (s *Service) refreshAfter401(ctx context.Context, state *requestState) bool {
	if !s.refresh401.allow(state.upn, s.now()) {
		s.metrics.unauthorized(false)
		s.log.Warn("Exchange refused the ticket (401) again soon after a fresh one; the 401 goes to the device without asking the KDC",
			telemetry.AttrUPN, state.upn, "interval", s.refresh401.interval.String(), "fix", "check the mailbox's EAS/EWS rights and kcd.targetSPN")
		return false
	}
	s.metrics.unauthorized(true)
	if ierr := s.tickets.invalidate(ctx, state.upn, state.spn, state.ticket); ierr != nil {
		s.log.Warn("invalidate ticket after 401", telemetry.AttrUPN, state.upn, "err", ierr)
	}
	return true
}
