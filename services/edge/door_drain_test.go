package edge

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"
)

// TestStopServesConnectionsAcceptedInGrace: a device connection accepted
// during the grace whose request arrives only after the grace (thousands of
// reconnecting phones queue their TLS handshakes and requests behind each
// other) is still answered: a Ping with Status 1, any other request by
// Exchange. net/http's Shutdown closes such a connection without an answer
// once it reads the request (bench/drain.sh saw these as EOFs after the
// listener closed).
func TestStopServesConnectionsAcceptedInGrace(t *testing.T) {
	tests := []struct {
		name, path, body string
		// check returns what is wrong with the answer, "" when right.
		check func(status int, body string, drained string) string
	}{
		{"Ping", pingPath, "<Ping/>", func(_ int, _ string, drained string) string { return drained }},
		{"Sync", syncPath, "<Sync/>", func(status int, body string, _ string) string {
			if status != 200 || body != "Sync body=7" {
				return "not Exchange's answer"
			}
			return ""
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			graceEnd := make(chan time.Time)
			h := newHarness(t, nil, options{
				tune:  func(c *Config) { c.DrainGrace = time.Hour },
				after: func(time.Duration) <-chan time.Time { return graceEnd },
			})
			h.heldExchange(t)
			cert := h.ca.issue(t, certOpts{cn: "alice"})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			stopped := make(chan error, 1)
			go func() { stopped <- h.edge.Stop(ctx) }()
			waitFor(t, "not ready", func() bool { return h.edge.Ready(context.Background()) != nil })

			d := h.device(t, &cert) // handshake done during the grace, no request yet
			close(graceEnd)
			addr := h.edge.Addr().String()
			waitFor(t, "listener closed after the grace", func() bool {
				c, err := net.DialTimeout("tcp", addr, time.Second)
				if err == nil {
					_ = c.Close()
				}
				return err != nil
			})
			d.send(tt.path, tt.body)
			resp, body, err := d.read()
			if err != nil {
				t.Fatalf("%s on a connection accepted during the grace, sent after it: no answer: %v", tt.name, err)
			}
			if what := tt.check(resp.StatusCode, body, drainedPingOK(resp, body)); what != "" {
				t.Fatalf("%s sent after the grace: %s (%d %q)", tt.name, what, resp.StatusCode, body)
			}
			if err := <-stopped; err != nil {
				t.Fatalf("Stop: %v", err)
			}
			if ctx.Err() != nil {
				t.Fatal("Stop waited for the drain deadline")
			}
		})
	}
}

// TestStopAnswersHeldPingsWhenGraceEnds: with a grace, the Pings held when
// Stop begins are answered when the grace ends, not at once: answered at
// once, the devices reconnect before the balancer has seen /readyz fail and
// come back to this edge, to be answered and moved a second time
// (bench/drain.sh: 1,042 of 4,900 did, and queued TLS handshakes delayed the
// exit by 3 s).
func TestStopAnswersHeldPingsWhenGraceEnds(t *testing.T) {
	graceEnd := make(chan time.Time)
	graceBegan := make(chan struct{})
	var once sync.Once
	h := newHarness(t, nil, options{
		tune: func(c *Config) { c.DrainGrace = time.Hour },
		after: func(time.Duration) <-chan time.Time {
			once.Do(func() { close(graceBegan) })
			return graceEnd
		},
	})
	hd := h.heldExchange(t)
	cert := h.ca.issue(t, certOpts{cn: "alice"})
	d := h.device(t, &cert)
	d.send(pingPath, "<Ping/>")
	waitFor(t, "Ping held at Exchange", func() bool { return hd.entered.Load() == 1 })

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- h.edge.Stop(ctx) }()
	<-graceBegan
	if h.edge.Ready(context.Background()) == nil {
		t.Fatal("ready during the grace")
	}
	if n := h.edge.parking.drainedCount(); n != 0 {
		t.Fatalf("%d held Pings answered when the grace began, want 0 (they are answered when it ends)", n)
	}
	close(graceEnd)
	d.readDrainedPing("held Ping after the grace")
	if err := <-stopped; err != nil {
		t.Fatalf("Stop: %v", err)
	}
}

// drainedCount returns how many parked Pings Stop marked to be answered.
func (k *parking) drainedCount() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := 0
	for p := range k.pings {
		if p.drained.Load() {
			n++
		}
	}
	return n
}

// TestParkingDrainNamesSlowStages: Pings still parked when the drain has
// waited parkSlowLog are reported by stage (where a slow exit waits:
// bench/drain.sh saw one Ping finish over a second after the others), and
// the drain still ends when the last one does.
func TestParkingDrainNamesSlowStages(t *testing.T) {
	tests := []struct {
		name   string
		stages []int32
		woken  []bool
		want   map[string]int
	}{
		{"one still sending", []int32{stageSending}, []bool{false}, map[string]int{"sending": 1}},
		{"woken, one held one delivering", []int32{stageHeld, stageDelivering}, []bool{true, true},
			map[string]int{"held": 1, "delivering": 1, "woken": 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lot := newParking()
			var pings []*parkedPing
			for i, st := range tt.stages {
				p := &parkedPing{}
				p.stage.Store(st)
				p.drained.Store(tt.woken[i])
				if !lot.keep(p, false) {
					t.Fatal("keep refused before the drain")
				}
				pings = append(pings, p)
			}
			got := make(chan map[string]int, 1)
			done := make(chan error, 1)
			go func() { done <- lot.drain(context.Background(), 0, func(m map[string]int) { got <- m }) }()
			m := <-got
			if len(m) != len(tt.want) {
				t.Fatalf("stages %v, want %v", m, tt.want)
			}
			for k, v := range tt.want {
				if m[k] != v {
					t.Fatalf("stages %v, want %v", m, tt.want)
				}
			}
			for _, p := range pings {
				lot.done(p)
			}
			if err := <-done; err != nil {
				t.Fatalf("drain: %v", err)
			}
		})
	}
}
