package ticket

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/kdc/kdctest"
	"github.com/segmesh/segmesh/pkg/refresh"
	"github.com/segmesh/segmesh/pkg/role"
)

// The steady-state simulation: users with realistic device activity drive
// the real ticket role (cache, renewal policy, s4u client) against the fake
// KDC on an injected clock, through a model of the edge's per-user cache.
// The KDC's requests are counted per user and day after a week of warm-up.

// Edge model: the policy of services/edge/kcd_tickets.go, whose numbers are
// pkg/refresh's (a role's tests do not import another role).
const (
	edgeSoftMargin = refresh.EdgeSoftMargin
	edgeSoftJitter = refresh.EdgeSoftJitter
	edgeSoftRetry  = refresh.EdgeSoftRetry
	edgeHardMargin = refresh.EdgeHardMargin
)

type deviceKind int

const (
	alwaysOn deviceKind = iota // a phone holding an EAS Ping around the clock
	office                     // a desktop client on weekdays, 9 to 5
)

type simDevice struct {
	user      string
	kind      deviceKind
	heartbeat time.Duration // alwaysOn: time between requests
	next      time.Time

	// the edge's copy of the ticket
	have            bool
	end, hard, soft time.Time

	exchanges int // KDC requests made while serving this device
	waits     int // requests that waited for the role although the edge had a ticket
}

type simResult struct {
	perUserDay, alwaysOnDay, officeDay float64
	alwaysOnWaits                      int
	days                               int
}

type simConfig struct {
	users               int // half always-on, half office
	warmup, days        int
	refuseRenewal       bool // the KDC renews no service ticket (Samba)
	seed                uint64
	ticketLife, renewal time.Duration
}

func simulate(tb testing.TB, sc simConfig) simResult {
	tb.Helper()
	rng := rand.New(rand.NewPCG(sc.seed, 11))
	// Monday 00:00.
	clk := &clock{t: time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)}
	kc := fakeRealmConfig()
	kc.Now, kc.RefuseServiceRenewal = clk.Now, sc.refuseRenewal
	kc.TicketLifetime, kc.RenewLifetime = sc.ticketLife, sc.renewal
	devs := make([]*simDevice, sc.users)
	for i := range devs {
		d := &simDevice{user: fmt.Sprintf("user%04d", i), kind: deviceKind(i % 2)}
		kc.Users = append(kc.Users, d.user)
		if d.kind == alwaysOn {
			d.heartbeat = 15*time.Minute + randDur(rng, 45*time.Minute) // up to 59 min
			d.next = clk.Now().Add(randDur(rng, d.heartbeat))
		} else {
			d.next = officeStart(clk.Now(), rng)
		}
		devs[i] = d
	}
	k, err := kdctest.New(kc)
	if err != nil {
		tb.Fatal(err)
	}
	c := config.Default()
	cfg := testConfig("127.0.0.1:1")
	svc, err := New(role.Deps{Config: &c}, WithConfig(cfg), WithExchanger(k), WithClock(clk.Now))
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	if err := svc.Start(ctx); err != nil {
		tb.Fatal(err)
	}
	defer func() { _ = svc.Stop(ctx) }()
	// The renewal loop waits on the wall clock, not the simulation's: on a
	// loaded machine it woke during the run and its TGT refresh raced the
	// client's Wait below (a -race failure). The simulated requests renew
	// the TGT themselves.
	svc.stop()
	svc.renewWG.Wait()
	total := func() int {
		n := 0
		for _, kind := range []kdctest.Kind{kdctest.KindAS, kdctest.KindTGT, kdctest.KindS4U2Self, kdctest.KindS4U2Proxy, kdctest.KindRenew, kdctest.KindTGS} {
			n += k.Count(kind)
		}
		return n
	}
	ask := func(d *simDevice) (end time.Time) {
		before := total()
		t, _, err := svc.Ticket(ctx, d.user, exchSPN)
		svc.engine().client.Wait()
		if err != nil {
			tb.Fatalf("%v: %s: %v", clk.Now(), d.user, err)
		}
		d.exchanges += total() - before
		return t.EndTime
	}
	store := func(d *simDevice, end time.Time) {
		now := clk.Now()
		margin := edgeHardMargin
		if life := end.Sub(now); life < 2*margin {
			margin = life / 2
		}
		soft := edgeSoftMargin + randDur(rng, edgeSoftJitter)
		if q := end.Sub(now) / 4; soft > q {
			soft = q
		}
		d.have, d.end, d.hard, d.soft = true, end, end.Add(-margin), end.Add(-soft)
		if retry := now.Add(edgeSoftRetry); d.soft.Before(retry) {
			d.soft = retry
		}
	}
	request := func(d *simDevice) {
		now := clk.Now()
		switch {
		case !d.have || !now.Before(d.hard):
			if d.have && d.kind == alwaysOn {
				d.waits++
			}
			store(d, ask(d))
		case !now.Before(d.soft):
			// In the edge this runs in the background; the request goes on.
			if end := ask(d); end.After(d.end) {
				store(d, end)
			} else {
				d.soft = now.Add(edgeSoftRetry)
			}
		}
	}
	measureFrom := clk.Now().AddDate(0, 0, sc.warmup)
	stop := measureFrom.AddDate(0, 0, sc.days)
	var start int
	for now := clk.Now(); now.Before(stop); now = clk.Now() {
		if now.Equal(measureFrom) {
			start = total()
			for _, d := range devs {
				d.exchanges, d.waits = 0, 0
			}
		}
		for _, d := range devs {
			if now.Before(d.next) {
				continue
			}
			request(d)
			if d.kind == alwaysOn {
				d.next = now.Add(d.heartbeat)
			} else {
				d.next = officeNext(now, rng)
			}
		}
		clk.Add(time.Minute)
	}
	r := simResult{days: sc.days}
	r.perUserDay = float64(total()-start) / float64(sc.users) / float64(sc.days)
	var on, off, nOn, nOff int
	for _, d := range devs {
		if d.kind == alwaysOn {
			on, nOn = on+d.exchanges, nOn+1
			r.alwaysOnWaits += d.waits
		} else {
			off, nOff = off+d.exchanges, nOff+1
		}
	}
	r.alwaysOnDay = float64(on) / float64(nOn) / float64(sc.days)
	r.officeDay = float64(off) / float64(nOff) / float64(sc.days)
	return r
}

// officeStart is the first request of the next working day after t:
// between 08:30 and 09:30, Monday to Friday.
func officeStart(t time.Time, rng *rand.Rand) time.Time {
	day := time.Date(t.Year(), t.Month(), t.Day(), 8, 30, 0, 0, time.UTC)
	for !day.After(t) || day.Weekday() == time.Saturday || day.Weekday() == time.Sunday {
		day = day.AddDate(0, 0, 1)
	}
	return day.Add(randDur(rng, time.Hour))
}

// officeNext is an office client's next request: every 5 to 20 minutes
// until 16:30 to 17:30, then the next working day.
func officeNext(t time.Time, rng *rand.Rand) time.Time {
	next := t.Add(5*time.Minute + randDur(rng, 15*time.Minute))
	end := time.Date(t.Year(), t.Month(), t.Day(), 16, 30, 0, 0, time.UTC).Add(randDur(rng, time.Hour))
	if next.Before(end) {
		return next
	}
	return officeStart(t, rng)
}

// TestSteadyStateExchanges is issue 11's aim, KDC exchanges per user per
// day ≤ 3 at steady state, with AD's default tickets (10 h, renewable 7
// days), simulated over a week after a week of warm-up.
func TestSteadyStateExchanges(t *testing.T) {
	// Fewer users would let the shared costs (the service account's TGT,
	// the renewal tries against a refusing KDC) weigh more per user.
	users := 40
	tests := []struct {
		name          string
		refuseRenewal bool
		check         func(r simResult) error
	}{
		{"KDC renews service tickets (RFC 4120, MIT)", false, func(r simResult) error {
			if r.perUserDay > 3 || r.alwaysOnDay > 3 {
				return fmt.Errorf("%.2f exchanges per user per day (always-on %.2f), aim ≤ 3", r.perUserDay, r.alwaysOnDay)
			}
			return nil
		}},
		{"KDC refuses service-ticket renewal (Samba)", true, func(r simResult) error {
			// Without renewal an always-on device costs a pair per
			// 10-hour ticket refreshed about an hour early: 2 × 24 / 9 ≈
			// 5.3; office users one pair a working day.
			if r.alwaysOnDay < 4.5 || r.alwaysOnDay > 6 {
				return fmt.Errorf("always-on %.2f exchanges per day, want 4.5 to 6", r.alwaysOnDay)
			}
			return nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := simulate(t, simConfig{users: users, warmup: 7, days: 7, refuseRenewal: tt.refuseRenewal, seed: 1,
				ticketLife: 10 * time.Hour, renewal: 7 * 24 * time.Hour})
			t.Logf("%d users, %d days: %.2f KDC exchanges per user per day (always-on %.2f, office %.2f per calendar day)",
				users, r.days, r.perUserDay, r.alwaysOnDay, r.officeDay)
			if r.alwaysOnWaits != 0 {
				t.Errorf("%d always-on requests waited for a ticket", r.alwaysOnWaits)
			}
			if err := tt.check(r); err != nil {
				t.Error(err)
			}
		})
	}
}

// BenchmarkSteadyState reports the simulated exchanges per user per day as
// custom metrics (one op is a whole simulated fortnight).
func BenchmarkSteadyState(b *testing.B) {
	for _, bc := range []struct {
		name   string
		refuse bool
	}{{"kdc=renews", false}, {"kdc=samba", true}} {
		b.Run(bc.name, func(b *testing.B) {
			var r simResult
			for i := 0; b.Loop(); i++ {
				r = simulate(b, simConfig{users: 200, warmup: 7, days: 7, refuseRenewal: bc.refuse, seed: uint64(i + 1),
					ticketLife: 10 * time.Hour, renewal: 7 * 24 * time.Hour})
			}
			b.ReportMetric(r.perUserDay, "exchanges/user/day")
			b.ReportMetric(r.alwaysOnDay, "always-on/day")
			b.ReportMetric(r.officeDay, "office/day")
		})
	}
}

// randDur returns a random duration in [0, d).
func randDur(rng *rand.Rand, d time.Duration) time.Duration {
	return time.Duration(rng.Int64N(int64(d)))
}
