package ticket

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/segmesh/segmesh/pkg/kdc"
	"github.com/segmesh/segmesh/pkg/s4u"
	"github.com/segmesh/segmesh/pkg/telemetry"
)

// refusalsToPause is how many renewals in a row the KDC must refuse, each
// followed by a new ticket it did issue, before renewals are paused.
const refusalsToPause = 3

// renewer decides whether a due ticket is renewed (one TGS exchange) or
// replaced by a new S4U2Self + S4U2Proxy pair (two), and learns when the KDC
// does not renew service tickets at all: Samba's (Heimdal's) KDC answers
// every such renewal KDC_ERR_POLICY, and each refused try would cost an
// exchange on top of the pair. After refusalsToPause refusals in a row it
// stops trying for retry, then tries one again.
type renewer struct {
	client *s4u.Client
	now    func() time.Time
	log    *slog.Logger
	retry  time.Duration
	count  metric.Int64Counter

	mu          sync.Mutex
	refusals    int       // in a row, each followed by a successful pair
	pausedUntil time.Time // no renewal tried before this
	logged      map[int32]bool
}

// fetch returns a ticket for user to spn: old renewed when that is worth
// it and the KDC renews, else a new pair.
func (r *renewer) fetch(ctx context.Context, user, spn string, old *s4u.Ticket) (*s4u.Ticket, error) {
	if !r.worthRenewing(old) {
		return r.client.ServiceTicket(ctx, user, spn)
	}
	t, err := r.client.Renew(ctx, old)
	if err == nil {
		r.record(ctx, "ok", 0)
		r.mu.Lock()
		r.refusals = 0
		r.mu.Unlock()
		return t, nil
	}
	var ue *kdc.UnreachableError
	if errors.As(err, &ue) || ctx.Err() != nil {
		// No KDC answered: a pair would fail the same way.
		r.record(ctx, "error", 0)
		return nil, err
	}
	code := int32(0)
	var ke *s4u.KDCError
	if errors.As(err, &ke) {
		code = ke.Code
	}
	r.record(ctx, "refused", code)
	r.logOnce(code, user, err)
	t, perr := r.client.ServiceTicket(ctx, user, spn)
	if perr == nil && ke != nil {
		r.refused(code)
	}
	return t, perr
}

// worthRenewing reports whether old should be renewed rather than
// replaced: it is renewable, its renewal would last at least half its
// lifetime (a pair gives a full one for two exchanges), and renewals are
// not paused.
func (r *renewer) worthRenewing(old *s4u.Ticket) bool {
	if old == nil {
		return false
	}
	now := r.now()
	if !old.Renewable(now) || old.RenewTill.Before(now.Add(old.Lifetime()/2)) {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return !now.Before(r.pausedUntil)
}

// refused notes a renewal the KDC refused although it then issued a pair.
func (r *renewer) refused(code int32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refusals++
	if r.refusals >= refusalsToPause {
		r.pausedUntil = r.now().Add(r.retry)
		if r.refusals == refusalsToPause {
			r.log.Warn("KDC refuses to renew service tickets; new tickets are issued by S4U instead and renewal is tried again later",
				telemetry.AttrKRBCode, code, "retry_in", r.retry.String())
		}
	}
}

func (r *renewer) logOnce(code int32, user string, err error) {
	r.mu.Lock()
	seen := r.logged[code]
	r.logged[code] = true
	r.mu.Unlock()
	if !seen {
		r.log.Warn("ticket renewal refused; falling back to S4U (logged once per code)",
			telemetry.AttrKRBCode, code, telemetry.AttrUPN, user, "err", err)
	}
}

func (r *renewer) record(ctx context.Context, result string, code int32) {
	r.count.Add(ctx, 1, metric.WithAttributes(attribute.String(telemetry.AttrResult, result),
		attribute.String(telemetry.AttrKRBCode, strconv.Itoa(int(code)))))
}

// paused returns when renewals are tried again, or zero when they are not
// paused (or KCD is off).
func (r *renewer) paused() time.Time {
	if r == nil {
		return time.Time{}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.now().Before(r.pausedUntil) {
		return r.pausedUntil
	}
	return time.Time{}
}
