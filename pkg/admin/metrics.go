package admin

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/segmesh/segmesh/pkg/telemetry"
)

// sample is one series' current value.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// gather reads the counters and gauges of g (the registry behind /metrics,
// in process: no text is written or parsed).
func gather(g prometheus.Gatherer) []sample {
	mfs, err := g.Gather()
	if err != nil && len(mfs) == 0 {
		return nil
	}
	var out []sample
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			s := sample{name: mf.GetName(), labels: map[string]string{}}
			switch {
			case m.Counter != nil:
				s.value = m.GetCounter().GetValue()
			case m.Gauge != nil:
				s.value = m.GetGauge().GetValue()
			case m.Untyped != nil:
				s.value = m.GetUntyped().GetValue()
			default:
				continue
			}
			for _, l := range m.GetLabel() {
				s.labels[l.GetName()] = l.GetValue()
			}
			out = append(out, s)
		}
	}
	return out
}

// family returns the series name /metrics shows for a telemetry.Metric...
// constant.
func family(name string) string { return telemetry.Family(name) }
