package edge

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/segmesh/segmesh/pkg/telemetry"
)

// issuerStatus is one issuer's CRL as the edge holds it, on /status.
type issuerStatus struct {
	Issuer string `json:"issuer"`
	Source string `json:"source"`
	// Partition is the CRL's partition (its Issuing Distribution Point's
	// names); empty for a CRL of every certificate of the issuer.
	Partition  string    `json:"partition,omitempty"`
	CRLNumber  string    `json:"crlNumber,omitempty"`
	Serials    int       `json:"serials"`
	ThisUpdate time.Time `json:"thisUpdate,omitzero"`
	NextUpdate time.Time `json:"nextUpdate,omitzero"`
	// Stale is judged on the edge's clock.
	Stale bool `json:"stale"`
}

// revocationStatus is the edge's revocation state on /status.
type revocationStatus struct {
	Ready             bool           `json:"ready"`
	Reason            string         `json:"reason,omitempty"`
	SnapshotVersion   uint64         `json:"snapshotVersion"`
	Generation        uint64         `json:"generation"`
	StreamBrokenSince time.Time      `json:"streamBrokenSince,omitzero"`
	RollbacksRefused  int64          `json:"rollbacksRefused"`
	FailClosedOnStale bool           `json:"failClosedOnStale"`
	RequireKnown      bool           `json:"requireKnownIssuer"`
	Issuers           []issuerStatus `json:"issuers"`
	// StreamPanics counts the panics on the crl role's stream since start
	// (door_revocation_panic.go); StreamPanicPending reports one since the
	// last snapshot put in force.
	StreamPanics       int64     `json:"streamPanics"`
	LastStreamPanic    time.Time `json:"lastStreamPanic,omitzero"`
	StreamPanicPending bool      `json:"streamPanicPending"`
}

// status describes the revocation state for the status page.
func (r *revocation) status() revocationStatus {
	now := r.now()
	st := revocationStatus{SnapshotVersion: r.wire.Load(), Generation: r.gen.Load(), RollbacksRefused: r.rollbacks.Load(),
		FailClosedOnStale: r.cfg.Policy.FailClosedOnStale, RequireKnown: r.cfg.Policy.RequireKnownIssuer, Issuers: []issuerStatus{}}
	reason, err := r.unready()
	st.Ready = reason == ""
	if err != nil {
		st.Reason = err.Error()
	}
	st.StreamPanics, st.StreamPanicPending = r.panics.count.Load(), r.panics.pending.Load()
	if last := r.panics.last.Load(); last != 0 {
		st.LastStreamPanic = time.Unix(0, last).UTC()
	}
	if since := r.brokenSince.Load(); since != 0 {
		st.StreamBrokenSince = time.Unix(0, since).UTC()
	}
	for _, ix := range r.set.Load().Indexes() {
		m := ix.Meta()
		is := issuerStatus{Issuer: m.Issuer, Source: m.Source, Partition: m.Partition, Serials: ix.Len(), ThisUpdate: m.ThisUpdate, NextUpdate: m.NextUpdate,
			Stale: !m.NextUpdate.IsZero() && now.After(m.NextUpdate)}
		if m.Number != nil {
			is.CRLNumber = m.Number.String()
		}
		st.Issuers = append(st.Issuers, is)
	}
	return st
}

// registerMetrics registers the edge's revocation instruments on m (nil:
// no-op): per issuer and partition the CRL's age and the time left to its nextUpdate (on
// the edge's clock, negative once past), the reason revocation is not ready
// (1 on the reason in force, 0 on the others) and the older CRLs refused.
func (r *revocation) registerMetrics(m metric.Meter) error {
	if m == nil {
		m = noop.NewMeterProvider().Meter("segmesh/edge")
	}
	age, err := m.Float64ObservableGauge(telemetry.MetricEdgeCRLAge, metric.WithUnit("s"),
		metric.WithDescription("Seconds since the thisUpdate of the CRL in force at this edge, per issuer."))
	if err != nil {
		return err
	}
	left, err := m.Float64ObservableGauge(telemetry.MetricEdgeCRLNextUpdate, metric.WithUnit("s"),
		metric.WithDescription("Seconds until the nextUpdate of the CRL in force at this edge, per issuer, on the edge's clock; negative once past (stale)."))
	if err != nil {
		return err
	}
	unready, err := m.Int64ObservableGauge(telemetry.MetricEdgeRevocationUnready,
		metric.WithDescription("1 on the reason the edge's revocation is not ready (no_snapshot, stream_broken, cdp_never_fetched, crl_stale), 0 on the others."))
	if err != nil {
		return err
	}
	rollbacks, err := m.Int64ObservableCounter(telemetry.MetricEdgeCRLRollbacksRefused,
		metric.WithDescription("CRLs from the crl role refused because the edge holds a newer one of the issuer (CRL number, else thisUpdate)."))
	if err != nil {
		return err
	}
	reasonOpts := make([]metric.ObserveOption, len(unreadyReasons))
	for i, reason := range unreadyReasons {
		reasonOpts[i] = metric.WithAttributes(attribute.String(telemetry.AttrReason, reason))
	}
	_, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		if !r.cfg.Enabled {
			return nil
		}
		now := r.now()
		for _, ix := range r.set.Load().Indexes() {
			meta := ix.Meta()
			attrs := metric.WithAttributes(attribute.String(telemetry.AttrIssuer, meta.Issuer), attribute.String(telemetry.AttrURL, meta.Source),
				attribute.String(telemetry.AttrPartition, meta.Partition))
			o.ObserveFloat64(age, now.Sub(meta.ThisUpdate).Seconds(), attrs)
			if !meta.NextUpdate.IsZero() {
				o.ObserveFloat64(left, meta.NextUpdate.Sub(now).Seconds(), attrs)
			}
		}
		reason, _ := r.unready()
		for i, rs := range unreadyReasons {
			v := int64(0)
			if rs == reason {
				v = 1
			}
			o.ObserveInt64(unready, v, reasonOpts[i])
		}
		o.ObserveInt64(rollbacks, r.rollbacks.Load())
		return nil
	}, age, left, unready, rollbacks)
	return err
}
