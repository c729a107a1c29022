package edge

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/segmesh/segmesh/pkg/telemetry"
)

// metrics are the edge's instruments. Every label is always present.
//
// The per-request counters (requests by status, identity and ticket cache
// lookups) are counted in atomics and reported by an observable counter's
// callback at collection: the same monotonic sums on /metrics, without the
// SDK's attribute-set lookup and lock on every request (about 1 µs per Add,
// three per request, in the lab profile; docs/benchmarks.md).
type metrics struct {
	duration metric.Float64Histogram
	upstream metric.Float64Histogram
	refusals metric.Int64Counter
	panics   metric.Int64Counter // device requests whose handler panicked (panicRecovery)

	requests, identity, tickets metric.Int64ObservableCounter
	fallbacks                   metric.Int64ObservableCounter
	parked                      metric.Int64ObservableGauge
	certExpiry                  metric.Int64ObservableGauge
	unauthorizedCtr             metric.Int64ObservableCounter

	// unauthorizedRefreshed and unauthorizedPassed count 401s from
	// Exchange that cost a fresh ticket, and those passed to the device.
	unauthorizedRefreshed, unauthorizedPassed atomic.Int64
	refreshedOpt, passedOpt                   metric.ObserveOption

	// serverCertNotAfter is the server certificate's end (Unix seconds),
	// set by Start; 0 reports nothing.
	serverCertNotAfter atomic.Int64

	statuses                  sync.Map // int → *statusCount
	identityHit, identityMiss atomic.Int64
	ticketHit, ticketMiss     atomic.Int64
	hitOpt, missOpt           metric.ObserveOption

	// parkedCounts returns the parked Pings held and answered; nil
	// reports none.
	parkedCounts         func() (held, answered int)
	heldOpt, answeredOpt metric.ObserveOption
	pingFallbacks        [numFallbacks]atomic.Int64
	fallbackOpts         [numFallbacks]metric.ObserveOption
}

// statusCount counts the requests answered with one status and holds its
// prebuilt options: a prebuilt slice passed to the variadic Record does not
// allocate.
type statusCount struct {
	n   atomic.Int64
	obs metric.ObserveOption
	rec []metric.RecordOption
}

// newMetrics creates the instruments on m (nil: no-op); parked returns
// the parked Pings held and answered at collection (nil: none).
func newMetrics(m metric.Meter, parked func() (held, answered int)) (*metrics, error) {
	if m == nil {
		m = noop.NewMeterProvider().Meter("segmesh/edge")
	}
	mt := metrics{parkedCounts: parked}
	var err error
	if mt.requests, err = m.Int64ObservableCounter(telemetry.MetricEdgeRequests, metric.WithDescription("Device requests by HTTP status.")); err != nil {
		return nil, err
	}
	if mt.duration, err = m.Float64Histogram(telemetry.MetricEdgeRequestDuration, metric.WithUnit("s"),
		metric.WithDescription("Time from request to the end of the response, Pings included.")); err != nil {
		return nil, err
	}
	if mt.upstream, err = m.Float64Histogram(telemetry.MetricEdgeUpstreamDuration, metric.WithUnit("s"),
		metric.WithDescription("Time from sending a request to Exchange to its response headers, a retry after a 401 included, Pings excluded.")); err != nil {
		return nil, err
	}
	if mt.tickets, err = m.Int64ObservableCounter(telemetry.MetricEdgeTicketCache, metric.WithDescription("Edge ticket cache lookups by result (hit, miss).")); err != nil {
		return nil, err
	}
	if mt.identity, err = m.Int64ObservableCounter(telemetry.MetricEdgeIdentityCache, metric.WithDescription("Edge identity cache lookups by result (hit, miss).")); err != nil {
		return nil, err
	}
	if mt.refusals, err = m.Int64Counter(telemetry.MetricEdgeCertificatesRefused, metric.WithDescription("Client certificates refused in the handshake, by reason.")); err != nil {
		return nil, err
	}
	if mt.panics, err = m.Int64Counter(telemetry.MetricEdgeHandlerPanics,
		metric.WithDescription("Device requests whose handler panicked: logged with the stack, the connection closed, the edge kept serving.")); err != nil {
		return nil, err
	}
	if mt.parked, err = m.Int64ObservableGauge(telemetry.MetricEdgeParkedPings,
		metric.WithDescription("EAS Pings parked off net/http, by state: held (waiting at Exchange) or answered (the connection waits for the device's next request).")); err != nil {
		return nil, err
	}
	if mt.fallbacks, err = m.Int64ObservableCounter(telemetry.MetricEdgePingFallbacks,
		metric.WithDescription("EAS Pings sent through the reverse proxy instead of parked, by reason.")); err != nil {
		return nil, err
	}
	if mt.certExpiry, err = m.Int64ObservableGauge(telemetry.MetricEdgeServerCertExpiry,
		metric.WithDescription("When the edge's server certificate ends (Unix seconds).")); err != nil {
		return nil, err
	}
	if mt.unauthorizedCtr, err = m.Int64ObservableCounter(telemetry.MetricEdgeExchangeUnauthorized,
		metric.WithDescription("401s from Exchange to a Kerberos request, by result: refreshed (a fresh ticket and one retry) or passed (to the device, within the refresh interval).")); err != nil {
		return nil, err
	}
	mt.refreshedOpt = metric.WithAttributeSet(attribute.NewSet(attribute.String(telemetry.AttrResult, "refreshed")))
	mt.passedOpt = metric.WithAttributeSet(attribute.NewSet(attribute.String(telemetry.AttrResult, "passed")))
	mt.hitOpt = metric.WithAttributeSet(attribute.NewSet(attribute.String(telemetry.AttrResult, "hit")))
	mt.missOpt = metric.WithAttributeSet(attribute.NewSet(attribute.String(telemetry.AttrResult, "miss")))
	mt.heldOpt = metric.WithAttributeSet(attribute.NewSet(attribute.String(telemetry.AttrState, "held")))
	mt.answeredOpt = metric.WithAttributeSet(attribute.NewSet(attribute.String(telemetry.AttrState, "answered")))
	for i := fallbackNone + 1; i < numFallbacks; i++ {
		mt.fallbackOpts[i] = metric.WithAttributeSet(attribute.NewSet(attribute.String(telemetry.AttrReason, pingFallbackReasons[i])))
	}
	if _, err = m.RegisterCallback(mt.observe, mt.requests, mt.tickets, mt.identity, mt.parked, mt.fallbacks, mt.certExpiry, mt.unauthorizedCtr); err != nil {
		return nil, err
	}
	return &mt, nil
}

// observe reports the counters at collection.
func (m *metrics) observe(_ context.Context, o metric.Observer) error {
	m.statuses.Range(func(_, v any) bool {
		c := v.(*statusCount)
		o.ObserveInt64(m.requests, c.n.Load(), c.obs)
		return true
	})
	o.ObserveInt64(m.identity, m.identityHit.Load(), m.hitOpt)
	o.ObserveInt64(m.identity, m.identityMiss.Load(), m.missOpt)
	o.ObserveInt64(m.tickets, m.ticketHit.Load(), m.hitOpt)
	o.ObserveInt64(m.unauthorizedCtr, m.unauthorizedRefreshed.Load(), m.refreshedOpt)
	o.ObserveInt64(m.unauthorizedCtr, m.unauthorizedPassed.Load(), m.passedOpt)
	o.ObserveInt64(m.tickets, m.ticketMiss.Load(), m.missOpt)
	var held, answered int
	if m.parkedCounts != nil {
		held, answered = m.parkedCounts()
	}
	o.ObserveInt64(m.parked, int64(held), m.heldOpt)
	o.ObserveInt64(m.parked, int64(answered), m.answeredOpt)
	for i := fallbackNone + 1; i < numFallbacks; i++ {
		o.ObserveInt64(m.fallbacks, m.pingFallbacks[i].Load(), m.fallbackOpts[i])
	}
	if na := m.serverCertNotAfter.Load(); na != 0 {
		o.ObserveInt64(m.certExpiry, na)
	}
	return nil
}

// pingFallback counts one Ping sent through the reverse proxy for why.
func (m *metrics) pingFallback(why pingFallback) {
	m.pingFallbacks[why].Add(1)
}

// fallbackCounts returns the Ping fallbacks by reason label.
func (m *metrics) fallbackCounts() map[string]int64 {
	out := make(map[string]int64, numFallbacks-1)
	for i := fallbackNone + 1; i < numFallbacks; i++ {
		out[pingFallbackReasons[i]] = m.pingFallbacks[i].Load()
	}
	return out
}

func (m *metrics) status(status int) *statusCount {
	if c, ok := m.statuses.Load(status); ok {
		return c.(*statusCount)
	}
	set := attribute.NewSet(attribute.Int(telemetry.AttrStatus, status))
	c := &statusCount{obs: metric.WithAttributeSet(set), rec: []metric.RecordOption{metric.WithAttributeSet(set)}}
	v, _ := m.statuses.LoadOrStore(status, c)
	return v.(*statusCount)
}

// request records one finished request.
func (m *metrics) request(ctx context.Context, status int, d time.Duration) {
	c := m.status(status)
	c.n.Add(1)
	m.duration.Record(ctx, d.Seconds(), c.rec...)
}

// upstreamDone records how long Exchange took to answer a request that is
// not a Ping.
func (m *metrics) upstreamDone(ctx context.Context, d time.Duration) {
	m.upstream.Record(ctx, d.Seconds())
}

// identityLookup counts one identity cache lookup.
func (m *metrics) identityLookup(hit bool) {
	if hit {
		m.identityHit.Add(1)
	} else {
		m.identityMiss.Add(1)
	}
}

// ticketLookup counts one ticket cache lookup.
func (m *metrics) ticketLookup(hit bool) {
	if hit {
		m.ticketHit.Add(1)
	} else {
		m.ticketMiss.Add(1)
	}
}

func (m *metrics) refused(reason string) {
	m.refusals.Add(context.Background(), 1, metric.WithAttributes(attribute.String("reason", reason)))
}

// unauthorized counts a 401 from Exchange: refreshed (a fresh ticket) or passed to the device.
func (m *metrics) unauthorized(refreshed bool) {
	if refreshed {
		m.unauthorizedRefreshed.Add(1)
	} else {
		m.unauthorizedPassed.Add(1)
	}
}
