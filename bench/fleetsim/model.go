package fleetsim

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"time"
)

// Costs are what one unit of work costs, measured on this machine.
type Costs struct {
	// EdgeCPUPerRequest is the edge process's CPU for one request on an
	// open connection (keep-alive; split edge 163–225 µs, docs/benchmarks.md).
	EdgeCPUPerRequest time.Duration
	// EdgeCPUPerHandshake is the CPU of a new device connection: full mTLS
	// handshake plus its first request (split 1,119–1,424 µs).
	EdgeCPUPerHandshake time.Duration
	// EdgeBaseBytes is an idle edge's RSS.
	EdgeBaseBytes int64
	// BytesPerHeldPing is the RSS one parked Ping adds (27–30 KB, Scale run
	// 2, with 9,898 per edge; 32.6 KB with 4,900 in the quiet drain run).
	BytesPerHeldPing int64
	// BytesPerStormConnection is the RSS each new device connection of a
	// minute adds on its edge beyond its held Ping, for that minute: a
	// reconnect storm's TLS handshakes run side by side, and their grown
	// goroutine stacks and garbage stay in the process until the runtime
	// returns them (bench/drain.sh, 14,170 B per reconnect after a
	// 4,900-phone takeover; docs/sizing.md).
	BytesPerStormConnection int64
	// TicketRPCCPU is a ticket replica's CPU for one GetServiceTicket served
	// from its cache.
	TicketRPCCPU time.Duration
	// TicketBytesPerUser is a replica's memory per cached user ticket.
	TicketBytesPerUser int64
	// TicketLifetime is the service ticket's lifetime (AD default 10 h);
	// ticket holders renew TicketMargin before its end.
	TicketLifetime time.Duration
	// TicketMargin is how long before its end a cached ticket is renewed.
	TicketMargin time.Duration
	// KDCExchangesPerTicket is the KDC exchanges of one user ticket
	// (S4U2Self + S4U2Proxy: 2).
	KDCExchangesPerTicket int
	// CRLBytesPerSerial is the revocation snapshot's size per revoked serial
	// (48.8 B/entry, docs/benchmarks.md section CRL).
	CRLBytesPerSerial float64
}

// Behaviour is what devices do.
type Behaviour struct {
	// HeartbeatMin and HeartbeatMax bound a device's Ping heartbeat; each
	// device draws one uniformly.
	HeartbeatMin, HeartbeatMax time.Duration
	// MailPerHourDay and MailPerHourNight are mails (each ends the Ping
	// early and costs a Sync) per device per hour inside and outside
	// DayStart..DayEnd.
	MailPerHourDay, MailPerHourNight float64
	// DayStart and DayEnd are the working day's hours.
	DayStart, DayEnd time.Duration
	// ReconnectsPerHour is how often a device loses its connection (and
	// needs a new TLS handshake, at a random edge).
	ReconnectsPerHour float64
}

// Events are the fleet's incidents of the day; a zero time skips one.
type Events struct {
	// RollingRestartAt starts a rolling restart: edge i stops at
	// RollingRestartAt + i×RestartSpacing, answering its held Pings, whose
	// devices reconnect to the other edges at once.
	RollingRestartAt, RestartSpacing time.Duration
	// ReplicaLostAt loses ticket replica 0 and its cache.
	ReplicaLostAt time.Duration
	// CRLAt publishes a CRL of CRLSerials serials to every edge.
	CRLAt      time.Duration
	CRLSerials int
}

// Fleet is the shape played.
type Fleet struct {
	// Devices is the number of devices, one user each.
	Devices int
	// Edges and Replicas are the edge and ticket role instances.
	Edges, Replicas int
	// Duration is the time played (a day).
	Duration time.Duration
	// Seed makes the run reproducible.
	Seed uint64
}

// Params is one run.
type Params struct {
	Fleet     Fleet
	Costs     Costs
	Behaviour Behaviour
	Events    Events
}

// Default returns the parameters measured here and an EAS-like day for
// devices devices over edges edges and replicas ticket replicas.
func Default(devices, edges, replicas int) Params {
	return Params{
		Fleet: Fleet{Devices: devices, Edges: edges, Replicas: replicas, Duration: 24 * time.Hour, Seed: 1},
		Costs: Costs{
			EdgeCPUPerRequest: 190 * time.Microsecond, EdgeCPUPerHandshake: 1300 * time.Microsecond,
			EdgeBaseBytes: 40 << 20, BytesPerHeldPing: 32000, BytesPerStormConnection: 14170,
			TicketRPCCPU: 60 * time.Microsecond, TicketBytesPerUser: 4096,
			TicketLifetime: 10 * time.Hour, TicketMargin: 5 * time.Minute, KDCExchangesPerTicket: 2,
			CRLBytesPerSerial: 48.8,
		},
		Behaviour: Behaviour{
			HeartbeatMin: 15 * time.Minute, HeartbeatMax: 30 * time.Minute,
			MailPerHourDay: 4, MailPerHourNight: 0.5, DayStart: 8 * time.Hour, DayEnd: 18 * time.Hour,
			ReconnectsPerHour: 0.5,
		},
		Events: Events{
			RollingRestartAt: 10 * time.Hour, RestartSpacing: 2 * time.Minute,
			ReplicaLostAt: 14 * time.Hour, CRLAt: 9 * time.Hour, CRLSerials: 1_000_000,
		},
	}
}

// Validate returns every problem with p.
func (p Params) Validate() error {
	var errs []error
	f, b := p.Fleet, p.Behaviour
	if f.Devices < 1 || f.Edges < 1 || f.Replicas < 1 {
		errs = append(errs, fmt.Errorf("fleetsim: devices (%d), edges (%d) and replicas (%d) must be at least 1", f.Devices, f.Edges, f.Replicas))
	}
	if f.Duration < time.Minute || f.Duration > 7*24*time.Hour {
		errs = append(errs, fmt.Errorf("fleetsim: duration %s: play between a minute and a week", f.Duration))
	}
	if b.HeartbeatMin < time.Minute || b.HeartbeatMax < b.HeartbeatMin {
		errs = append(errs, fmt.Errorf("fleetsim: heartbeat %s..%s: want 1 min ≤ min ≤ max", b.HeartbeatMin, b.HeartbeatMax))
	}
	if b.MailPerHourDay < 0 || b.MailPerHourNight < 0 || b.ReconnectsPerHour < 0 {
		errs = append(errs, errors.New("fleetsim: mail and reconnect rates must not be negative"))
	}
	if p.Costs.TicketLifetime <= p.Costs.TicketMargin {
		errs = append(errs, fmt.Errorf("fleetsim: ticket lifetime %s must exceed the margin %s", p.Costs.TicketLifetime, p.Costs.TicketMargin))
	}
	return errors.Join(errs...)
}

// Result is what a run measured. Rates are per second; "peak" is the
// busiest minute's average.
type Result struct {
	Requests, Handshakes, TicketRPCs, KDCExchanges int64
	// PeakKDCPerSec and MeanKDCPerSec are KDC exchanges per second.
	PeakKDCPerSec, MeanKDCPerSec float64
	// PeakEdgeCores is the busiest edge's busiest minute in cores;
	// MeanEdgeCores the fleet's mean per edge.
	PeakEdgeCores, MeanEdgeCores float64
	// PeakHeldPerEdge is the most Pings one edge held at once (during the
	// rolling restart the others hold its devices); PeakEdgeBytes is the
	// most RSS one edge needed in a minute: its held Pings and that
	// minute's new connections (BytesPerStormConnection).
	PeakHeldPerEdge int64
	PeakEdgeBytes   int64
	// PeakTicketRPCPerSec is the ticket RPCs per second in the busiest minute.
	PeakTicketRPCPerSec float64
	// ReplicaCores is the busiest minute's ticket RPC CPU over all
	// replicas; ReplicaBytes the ticket cache memory of one replica.
	ReplicaCores float64
	ReplicaBytes int64
	// CRLFanoutBytes is the bytes pushed to the edges for the CRL.
	CRLFanoutBytes int64
	// KDCAfterReplicaLoss is the exchanges in the hour after the loss.
	KDCAfterReplicaLoss int64
	// RestartHandshakes is the handshakes in the rolling restart's minutes.
	RestartHandshakes int64
}

// sim is one run's state.
type sim struct {
	p       Params
	secs    int
	req, hs []int32 // per edge × minute
	tix     []int32 // ticket RPCs per minute
	kdc     []int32 // KDC exchanges per minute
	held    []int32 // held-Ping deltas per edge × minute
	// edgeTicket[e*D+u] is when edge e's ticket for user u needs renewing
	// (seconds; 0 none). replicaTicket[u] likewise for the user's replica.
	edgeTicket    []float32
	replicaTicket []float32
	replicaOwner  []int8
	res           Result
}

// Run plays p.
func Run(p Params) (Result, error) {
	if err := p.Validate(); err != nil {
		return Result{}, err
	}
	f := p.Fleet
	secs := int(f.Duration / time.Second)
	mins := secs/60 + 1
	s := &sim{p: p, secs: secs,
		req: make([]int32, f.Edges*mins), hs: make([]int32, f.Edges*mins), held: make([]int32, f.Edges*mins),
		tix: make([]int32, mins), kdc: make([]int32, mins),
		edgeTicket: make([]float32, f.Edges*f.Devices), replicaTicket: make([]float32, f.Devices), replicaOwner: make([]int8, f.Devices)}
	for d := range f.Devices {
		s.device(d)
	}
	s.summarise(mins)
	return s.res, nil
}

// device plays device d (user d) for the whole run.
func (s *sim) device(d int) {
	p, f, b := s.p, s.p.Fleet, s.p.Behaviour
	rng := rand.New(rand.NewPCG(f.Seed, uint64(d)))
	hb := b.HeartbeatMin.Seconds() + rng.Float64()*(b.HeartbeatMax-b.HeartbeatMin).Seconds()
	end := float64(s.secs)
	edge := d % f.Edges
	// At the start the fleet is warm: the device is connected and its
	// edge and replica hold a ticket of random age.
	life := (p.Costs.TicketLifetime - p.Costs.TicketMargin).Seconds()
	age := rng.Float64() * life
	s.edgeTicket[edge*f.Devices+d] = float32(life - age)
	s.replicaTicket[d] = float32(life - age)
	s.replicaOwner[d] = int8(s.owner(d, false))
	s.hold(edge, 0, 1)
	// The Ping in flight at the start began up to a heartbeat before it.
	t := rng.Float64()*hb - hb
	nextDrop := rng.ExpFloat64() * 3600 / math.Max(b.ReconnectsPerHour, 1e-9)
	restarted := make([]bool, f.Edges)
	for t < end {
		// The Ping in flight ends at the earliest of: heartbeat, mail,
		// connection loss, its edge's restart.
		pingEnd := t + hb
		from := math.Max(t, 0)
		mail := from + s.nextMail(rng, from)
		stop, stopEdge := end, -1
		if ra := p.Events.RollingRestartAt.Seconds(); ra > 0 {
			for e := range f.Edges {
				at := ra + float64(e)*p.Events.RestartSpacing.Seconds()
				if !restarted[e] && e == edge && at >= t && at < stop {
					stop, stopEdge = at, e
				}
			}
		}
		next := math.Min(math.Min(pingEnd, mail), math.Min(nextDrop, stop))
		if next >= end {
			break
		}
		t = next
		switch {
		case t == stop:
			// The edge answers the Ping (Status 1, Connection: close); the
			// device reconnects to another edge and sends it again.
			restarted[stopEdge] = true
			edge = s.move(rng, d, edge, t, stopEdge)
			s.request(edge, d, t)
			s.res.RestartHandshakes++
		case t == nextDrop:
			edge = s.move(rng, d, edge, t, -1)
			s.request(edge, d, t)
			nextDrop = t + rng.ExpFloat64()*3600/math.Max(b.ReconnectsPerHour, 1e-9)
		case t == mail:
			s.request(edge, d, t) // the Ping's answer triggers a Sync
			s.request(edge, d, t) // then the next Ping
		default:
			s.request(edge, d, t) // heartbeat expired: the next Ping
		}
	}
}

// nextMail draws the time to the next mail from t (a Poisson process whose
// rate changes at the day's edges; thinning with the higher rate).
func (s *sim) nextMail(rng *rand.Rand, t float64) float64 {
	b := s.p.Behaviour
	hi := math.Max(b.MailPerHourDay, b.MailPerHourNight)
	if hi <= 0 {
		return math.Inf(1)
	}
	dt := 0.0
	for i := 0; i < 10000; i++ {
		dt += rng.ExpFloat64() * 3600 / hi
		h := math.Mod(t+dt, 86400)
		rate := b.MailPerHourNight
		if h >= b.DayStart.Seconds() && h < b.DayEnd.Seconds() {
			rate = b.MailPerHourDay
		}
		if rng.Float64()*hi < rate {
			return dt
		}
	}
	return math.Inf(1)
}

// move reconnects device d at t: a new TLS connection to a random edge
// other than avoid (the balancer's choice), and returns it.
func (s *sim) move(rng *rand.Rand, d, from int, t float64, avoid int) int {
	n := s.p.Fleet.Edges
	to := rng.IntN(n)
	if avoid >= 0 && n > 1 {
		to = (avoid + 1 + rng.IntN(n-1)) % n
	}
	m := s.minute(t)
	s.hs[to*s.mins()+m]++
	s.res.Handshakes++
	s.hold(from, t, -1)
	s.hold(to, t, 1)
	return to
}

func (s *sim) mins() int            { return s.secs/60 + 1 }
func (s *sim) minute(t float64) int { return min(int(t)/60, s.mins()-1) }

func (s *sim) hold(edge int, t float64, delta int32) { s.held[edge*s.mins()+s.minute(t)] += delta }

// request charges one request of device d on edge at t, with the ticket
// fetches it needs.
func (s *sim) request(edge, d int, t float64) {
	f, c := s.p.Fleet, s.p.Costs
	m := s.minute(t)
	s.req[edge*s.mins()+m]++
	s.res.Requests++
	slot := edge*f.Devices + d
	if float64(s.edgeTicket[slot]) > t {
		return
	}
	s.tix[m]++
	s.res.TicketRPCs++
	owner := s.owner(d, t >= s.p.Events.ReplicaLostAt.Seconds() && s.p.Events.ReplicaLostAt > 0)
	if int8(owner) != s.replicaOwner[d] {
		s.replicaOwner[d], s.replicaTicket[d] = int8(owner), 0
	}
	if float64(s.replicaTicket[d]) <= t {
		s.kdc[m] += int32(c.KDCExchangesPerTicket)
		s.res.KDCExchanges += int64(c.KDCExchangesPerTicket)
		if la := s.p.Events.ReplicaLostAt.Seconds(); la > 0 && t >= la && t < la+3600 {
			s.res.KDCAfterReplicaLoss += int64(c.KDCExchangesPerTicket)
		}
		s.replicaTicket[d] = float32(t + (c.TicketLifetime - c.TicketMargin).Seconds())
	}
	s.edgeTicket[slot] = s.replicaTicket[d]
}

// owner is the ticket replica rendezvous hashing gives user d, among all
// replicas or, after the loss, all but replica 0.
func (s *sim) owner(d int, lost bool) int {
	best, bestScore := -1, uint64(0)
	for r := range s.p.Fleet.Replicas {
		if lost && r == 0 && s.p.Fleet.Replicas > 1 {
			continue
		}
		h := fnv.New64a()
		_, _ = fmt.Fprintf(h, "%d/%d", d, r)
		if sc := h.Sum64(); best < 0 || sc > bestScore {
			best, bestScore = r, sc
		}
	}
	return best
}

// summarise turns the per-minute counts into the result.
func (s *sim) summarise(mins int) {
	f, c := s.p.Fleet, s.p.Costs
	r := &s.res
	var peakKDC, peakTix int32
	for m := range mins {
		peakKDC = max(peakKDC, s.kdc[m])
		peakTix = max(peakTix, s.tix[m])
	}
	r.PeakKDCPerSec = float64(peakKDC) / 60
	r.MeanKDCPerSec = float64(r.KDCExchanges) / float64(s.secs)
	r.PeakTicketRPCPerSec = float64(peakTix) / 60
	r.ReplicaCores = r.PeakTicketRPCPerSec * c.TicketRPCCPU.Seconds()
	r.ReplicaBytes = int64(math.Ceil(float64(f.Devices)/float64(max(1, f.Replicas-1)))) * c.TicketBytesPerUser
	var total float64
	for e := range f.Edges {
		var held int64
		for m := range mins {
			i := e*mins + m
			held += int64(s.held[i])
			r.PeakHeldPerEdge = max(r.PeakHeldPerEdge, held)
			r.PeakEdgeBytes = max(r.PeakEdgeBytes, c.EdgeBaseBytes+held*c.BytesPerHeldPing+int64(s.hs[i])*c.BytesPerStormConnection)
			cpu := float64(s.req[i])*c.EdgeCPUPerRequest.Seconds() + float64(s.hs[i])*c.EdgeCPUPerHandshake.Seconds()
			total += cpu
			r.PeakEdgeCores = max(r.PeakEdgeCores, cpu/60)
		}
	}
	r.MeanEdgeCores = total / float64(s.secs) / float64(f.Edges)
	if s.p.Events.CRLAt > 0 && s.p.Events.CRLAt < f.Duration {
		r.CRLFanoutBytes = int64(float64(s.p.Events.CRLSerials)*c.CRLBytesPerSerial) * int64(f.Edges)
	}
}
