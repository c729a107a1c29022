package loadgen

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// Balancer stands in for the load balancer (or Kubernetes Service) in front
// of several edges: a device's new connection goes to its home edge
// (device number modulo the edges) while that edge reports ready, else to
// the next ready one. Readiness is polled from each edge's /readyz, as a
// balancer's health check or the endpoints controller would, so a stopping
// edge stops getting new connections only after a poll has seen it not
// ready — which is what the edge's drain grace is for.
type Balancer struct {
	targets []string
	ready   []string
	up      []atomic.Bool
	client  *http.Client
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
		client: &http.Client{Timeout: time.Second}}
	for i := range b.up {
		b.up[i].Store(true)
	}
	return b, nil
}

// Poll checks every readiness URL once now and then every interval until
// ctx ends.
func (b *Balancer) Poll(ctx context.Context, interval time.Duration) {
	if len(b.ready) == 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		for i, u := range b.ready {
			b.up[i].Store(b.check(ctx, u))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (b *Balancer) check(ctx context.Context, u string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return false
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
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
