package edge

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/segmesh/segmesh/pkg/telemetry"
)

// metrics are the edge's instruments. Every label is always present.
type metrics struct {
	requests   metric.Int64Counter
	duration   metric.Float64Histogram
	ticketHits metric.Int64Counter
	identity   metric.Int64Counter
	refusals   metric.Int64Counter

	statusOpts sync.Map // int → *statusOpts
	hit, miss  []metric.AddOption
}

// statusOpts are the prebuilt option slices of one status: passing a
// prebuilt slice to the variadic Add and Record does not allocate.
type statusOpts struct {
	add []metric.AddOption
	rec []metric.RecordOption
}

func newMetrics(m metric.Meter) (*metrics, error) {
	if m == nil {
		m = noop.NewMeterProvider().Meter("segmesh/edge")
	}
	var mt metrics
	var err error
	if mt.requests, err = m.Int64Counter("edge.requests", metric.WithDescription("Device requests by HTTP status.")); err != nil {
		return nil, err
	}
	if mt.duration, err = m.Float64Histogram("edge.request.duration", metric.WithUnit("s"),
		metric.WithDescription("Time from request to the end of the response, Pings included.")); err != nil {
		return nil, err
	}
	if mt.ticketHits, err = m.Int64Counter("edge.ticket.cache", metric.WithDescription("Edge ticket cache lookups by result (hit, miss).")); err != nil {
		return nil, err
	}
	if mt.identity, err = m.Int64Counter("edge.identity.cache", metric.WithDescription("Edge identity cache lookups by result (hit, miss).")); err != nil {
		return nil, err
	}
	if mt.refusals, err = m.Int64Counter("edge.certificates.refused", metric.WithDescription("Client certificates refused in the handshake, by reason.")); err != nil {
		return nil, err
	}
	mt.hit = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(attribute.String(telemetry.AttrResult, "hit")))}
	mt.miss = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(attribute.String(telemetry.AttrResult, "miss")))}
	return &mt, nil
}

func (m *metrics) statusOpt(status int) *statusOpts {
	if o, ok := m.statusOpts.Load(status); ok {
		return o.(*statusOpts)
	}
	a := metric.WithAttributeSet(attribute.NewSet(attribute.Int(telemetry.AttrStatus, status)))
	o := &statusOpts{add: []metric.AddOption{a}, rec: []metric.RecordOption{a}}
	m.statusOpts.Store(status, o)
	return o
}

// request records one finished request.
func (m *metrics) request(ctx context.Context, status int, d time.Duration) {
	o := m.statusOpt(status)
	m.requests.Add(ctx, 1, o.add...)
	m.duration.Record(ctx, d.Seconds(), o.rec...)
}

func (m *metrics) cache(ctx context.Context, c metric.Int64Counter, hit bool) {
	if hit {
		c.Add(ctx, 1, m.hit...)
	} else {
		c.Add(ctx, 1, m.miss...)
	}
}

func (m *metrics) refused(reason string) {
	m.refusals.Add(context.Background(), 1, metric.WithAttributes(attribute.String("reason", reason)))
}
