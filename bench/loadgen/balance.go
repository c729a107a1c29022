package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Balancer stands in for the load balancer (or Kubernetes Service) in front
// of several edges: a device's new connection goes to its home edge
// (device number modulo the edges) while that edge reports ready, else to
// the next ready one. Readiness is polled from each edge's /readyz, as a
// balancer's health check or the endpoints controller would, so a stopping
// edge stops getting new connections only after a poll has seen it not
// ready — which is what the edge's drain grace is for.
//
// As a Kubernetes readiness probe with failureThreshold, a poll that gets no
// answer in time (a busy edge) counts against the edge only after Failures
// in a row; an answer other than 200 (a stopping edge) or a refused
// connection (an edge gone) takes it out at once. Marking a busy edge out
// on one slow poll sent devices to the edge that was stopping when both
// were out (bench/drain.sh, 1,042 refused connections).
type Balancer struct {
	targets []string
	ready   []string
	up      []atomic.Bool
	client  *http.Client
	// Failures is how many polls in a row must go unanswered before an
	// edge is out (at least 1).
	Failures int

	mu          sync.Mutex
	unanswered  []int
	transitions []Transition
}

// Transition is a change of an edge's readiness as the Balancer saw it.
type Transition struct {
	// TimeMs is when (Unix ms).
	TimeMs int64
	// Target is the edge.
	Target string
	// Up is the new state.
	Up bool
	// Why is the poll's outcome: "200", "503", "refused", "no answer: ...".
	Why string
}

// NewBalancer returns a Balancer over targets (host:port, loopback only);
// readyURLs[i], when given, is target i's readiness URL (loopback only), and
// an empty list treats every target as ready.
func NewBalancer(ctx context.Context, targets, readyURLs []string) (*Balancer, error) {
	if len(targets) == 0 {
		return nil, fmt.Errorf("loadgen: balancer: no target")
	}
	if len(readyURLs) != 0 && len(readyURLs) != len(targets) {
		return nil, fmt.Errorf("loadgen: balancer: %d readiness URLs for %d targets; give one per target", len(readyURLs), len(targets))
	}
	for _, t := range targets {
		host, _, err := net.SplitHostPort(t)
		if err != nil {
			return nil, fmt.Errorf("loadgen: balancer target %q: %w", t, err)
		}
		if err := CheckLoopbackHost(ctx, host, net.DefaultResolver.LookupIPAddr); err != nil {
			return nil, err
		}
	}
	for _, u := range readyURLs {
		if err := CheckLoopbackURL(ctx, u, net.DefaultResolver.LookupIPAddr); err != nil {
			return nil, err
		}
	}
	b := &Balancer{targets: targets, ready: readyURLs, up: make([]atomic.Bool, len(targets)),
		client: &http.Client{Timeout: time.Second}, Failures: 3, unanswered: make([]int, len(targets))}
	for i := range b.up {
		b.up[i].Store(true)
	}
	return b, nil
}

// Poll checks every readiness URL once now and then every interval until
// ctx ends; the edges are polled side by side, as a prober would.
func (b *Balancer) Poll(ctx context.Context, interval time.Duration) {
	if len(b.ready) == 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		var wg sync.WaitGroup
		for i, u := range b.ready {
			wg.Go(func() { b.record(i, b.check(ctx, u)) })
		}
		wg.Wait()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// pollResult is one readiness poll's outcome.
type pollResult struct {
	answered, ok bool
	why          string
}

func (b *Balancer) check(ctx context.Context, u string) pollResult {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return pollResult{answered: true, why: err.Error()}
	}
	resp, err := b.client.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return pollResult{answered: true, why: "refused"}
		}
		return pollResult{why: "no answer: " + classify(err)}
	}
	_ = resp.Body.Close()
	return pollResult{answered: true, ok: resp.StatusCode == http.StatusOK, why: strconv.Itoa(resp.StatusCode)}
}

// record applies one poll of target i.
func (b *Balancer) record(i int, r pollResult) {
	b.mu.Lock()
	defer b.mu.Unlock()
	up := r.ok
	if !r.answered {
		b.unanswered[i]++
		up = b.up[i].Load() && b.unanswered[i] < max(b.Failures, 1)
	} else {
		b.unanswered[i] = 0
	}
	if b.up[i].Swap(up) != up {
		b.transitions = append(b.transitions, Transition{TimeMs: time.Now().UnixMilli(), Target: b.targets[i], Up: up, Why: r.why})
	}
}

// Transitions returns the readiness changes seen so far.
func (b *Balancer) Transitions() []Transition {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Transition(nil), b.transitions...)
}

// Pick returns the address for device's next connection: its home target
// when ready, else the next ready one; when none is ready, the home target
// (a real balancer would refuse; the device's error is counted).
func (b *Balancer) Pick(device int) string {
	n := len(b.targets)
	home := device % n
	for i := range n {
		if j := (home + i) % n; b.up[j].Load() {
			return b.targets[j]
		}
	}
	return b.targets[home]
}
