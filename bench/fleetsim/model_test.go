package fleetsim

import (
	"math"
	"testing"
	"time"
)

// quiet is a fleet with no incidents, for checks against arithmetic.
func quiet(devices, edges, replicas int) Params {
	p := Default(devices, edges, replicas)
	p.Events = Events{}
	return p
}

func TestDeterministic(t *testing.T) {
	p := Default(1000, 3, 3)
	a, err := Run(p)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Run(p)
	if a != b {
		t.Fatalf("two runs with seed %d differ:\n%+v\n%+v", p.Fleet.Seed, a, b)
	}
	p.Fleet.Seed = 2
	c, _ := Run(p)
	if c == a {
		t.Fatal("another seed gave the same run")
	}
}

// TestAgainstArithmetic checks the model's steady state against what can
// be computed by hand.
func TestAgainstArithmetic(t *testing.T) {
	tests := []struct {
		name  string
		p     Params
		check func(t *testing.T, p Params, r Result)
	}{
		{"KDC: one ticket per user per lifetime", quiet(5000, 2, 3), func(t *testing.T, p Params, r Result) {
			life := (p.Costs.TicketLifetime - p.Costs.TicketMargin).Seconds()
			want := float64(p.Fleet.Devices) * 2 / life
			if math.Abs(r.MeanKDCPerSec-want)/want > 0.05 {
				t.Errorf("mean KDC exchanges/s %.3f, want %.3f ± 5 %%", r.MeanKDCPerSec, want)
			}
		}},
		{"requests: one Ping per heartbeat without mail", func() Params {
			p := quiet(5000, 2, 3)
			p.Behaviour.MailPerHourDay, p.Behaviour.MailPerHourNight, p.Behaviour.ReconnectsPerHour = 0, 0, 0
			return p
		}(), func(t *testing.T, p Params, r Result) {
			mean := (p.Behaviour.HeartbeatMin + p.Behaviour.HeartbeatMax).Seconds() / 2
			// E[1/H] for H uniform on [a, b] is ln(b/a)/(b-a).
			a, b := p.Behaviour.HeartbeatMin.Seconds(), p.Behaviour.HeartbeatMax.Seconds()
			want := float64(p.Fleet.Devices) * p.Fleet.Duration.Seconds() * math.Log(b/a) / (b - a)
			if math.Abs(float64(r.Requests)-want)/want > 0.02 {
				t.Errorf("requests %d, want %.0f ± 2 %% (mean heartbeat %.0f s)", r.Requests, want, mean)
			}
			if r.Handshakes != 0 {
				t.Errorf("%d new connections without reconnects or restarts", r.Handshakes)
			}
		}},
		{"restart of one of two edges: its devices move, once", func() Params {
			p := quiet(9800, 2, 1)
			p.Fleet.Duration = 15 * time.Minute
			p.Behaviour.HeartbeatMin, p.Behaviour.HeartbeatMax = 50*time.Minute, 50*time.Minute
			p.Behaviour.MailPerHourDay, p.Behaviour.MailPerHourNight, p.Behaviour.ReconnectsPerHour = 0, 0, 0
			p.Events.RollingRestartAt, p.Events.RestartSpacing = 10*time.Minute, time.Hour
			p.Costs.TicketLifetime = 1000 * time.Hour // no ticket expires within the run
			return p
		}(), func(t *testing.T, p Params, r Result) {
			if r.RestartHandshakes != 4900 || r.PeakHeldPerEdge != 9800 {
				t.Errorf("restart moved %d devices (want 4900); one edge held %d at most (want 9800)", r.RestartHandshakes, r.PeakHeldPerEdge)
			}
			c := p.Costs
			if want := c.EdgeBaseBytes + 9800*c.BytesPerHeldPing + 4900*c.BytesPerStormConnection; r.PeakEdgeBytes != want {
				t.Errorf("busiest edge's RSS %d, want base + 9,800 held + 4,900 storm connections = %d", r.PeakEdgeBytes, want)
			}
			q := p
			q.Events = Events{}
			base, _ := Run(q)
			if r.KDCExchanges != base.KDCExchanges {
				t.Errorf("%d KDC exchanges with the restart, %d without: the replica holds every moved user's ticket", r.KDCExchanges, base.KDCExchanges)
			}
		}},
		{"replica loss costs its users' tickets only as edges miss them", func() Params {
			p := quiet(6000, 3, 3)
			p.Events.ReplicaLostAt = 12 * time.Hour
			return p
		}(), func(t *testing.T, p Params, r Result) {
			base, _ := Run(quiet(6000, 3, 3))
			extra := r.KDCExchanges - base.KDCExchanges
			if extra <= 0 || extra > int64(2*p.Fleet.Devices/3)+200 {
				t.Errorf("replica loss cost %d extra exchanges, want (0, about 2 × a third of the users]", extra)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Run(tt.p)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, tt.p, r)
		})
	}
}

func TestValidateRefuses(t *testing.T) {
	for _, mutate := range []func(*Params){
		func(p *Params) { p.Fleet.Devices = 0 },
		func(p *Params) { p.Fleet.Duration = time.Second },
		func(p *Params) { p.Behaviour.HeartbeatMax = time.Minute },
		func(p *Params) { p.Behaviour.MailPerHourDay = -1 },
		func(p *Params) { p.Costs.TicketLifetime = time.Minute },
	} {
		p := Default(10, 1, 1)
		mutate(&p)
		if _, err := Run(p); err == nil {
			t.Errorf("accepted %+v", p)
		}
	}
}

// TestAgainstDrainRuns checks the model's memory after a takeover against
// bench/drain.sh runs (docs/sizing.md, "Validation"): each run's idle RSS
// and RSS per held Ping (measured before SIGTERM) go in, the surviving
// edge's RSS just after it took the other's phones over must agree within
// the 20 %. BytesPerStormConnection was derived from the 13:51 run
// alone; the others check it.
func TestAgainstDrainRuns(t *testing.T) {
	tests := []struct {
		name                    string
		perEdge                 int64
		idleKiB, heldKiB, after int64 // RSS in KiB: idle, holding perEdge, after the takeover
	}{
		{"2026-12-05 13:51, 2 x 4,900, quiet (load 1.5)", 4900, 21764, 177796, 401632},
		{"2026-12-05 12:15, 2 x 1,000, load 10-16", 1000, 21504, 58368, 106496},
		{"2026-12-05 12:23, 2 x 1,000, load 10-16", 1000, 21504, 59392, 113664},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := quiet(int(2*tt.perEdge), 2, 1)
			p.Fleet.Duration = 15 * time.Minute
			p.Behaviour.HeartbeatMin, p.Behaviour.HeartbeatMax = 50*time.Minute, 50*time.Minute
			p.Behaviour.MailPerHourDay, p.Behaviour.MailPerHourNight, p.Behaviour.ReconnectsPerHour = 0, 0, 0
			p.Events.RollingRestartAt, p.Events.RestartSpacing = 10*time.Minute, time.Hour
			p.Costs.TicketLifetime = 1000 * time.Hour
			p.Costs.EdgeBaseBytes = tt.idleKiB << 10
			p.Costs.BytesPerHeldPing = (tt.heldKiB - tt.idleKiB) << 10 / tt.perEdge
			r, err := Run(p)
			if err != nil {
				t.Fatal(err)
			}
			measured := float64(tt.after << 10)
			d := (float64(r.PeakEdgeBytes) - measured) / measured
			t.Logf("model %.0f MiB, measured %.0f MiB: %+.1f %%", float64(r.PeakEdgeBytes)/(1<<20), measured/(1<<20), 100*d)
			if math.Abs(d) > 0.20 {
				t.Errorf("model %.0f MiB after the takeover, measured %.0f MiB: %+.0f %%", float64(r.PeakEdgeBytes)/(1<<20), measured/(1<<20), 100*d)
			}
		})
	}
}
