package edge

import (
	"context"
	"math/rand/v2"
	"time"
)

// Spreading the drained Pings' answers (segmesh.edge.drainSpreadMillis).
//
// Answered in the same instant, every device of a stopping edge reconnects
// in the same instant: thousands of TLS handshakes and upstream connections
// queue on the edges that stay, and what a device notices, the time from
// its answer to holding a Ping again, is its place in that queue
// (bench/drain.sh, docs/benchmarks.md). Envoy's `drain_strategy: gradual`
// drains progressively over its drain time for the same reason. With a
// window, Stop answers the held Pings in equal batches every spreadTick
// over it, in a random order (math/rand/v2's Shuffle: no device is always
// first or last, whatever its user, connection age or map position). Pings
// that arrive meanwhile are answered at once, as after the grace. A Ping
// Exchange answers before its turn goes to the device as usual. The window
// is bounded by the drain: if the drain's context ends first, the Pings
// left are answered at once.

// spreadTick is the interval between two batches of a spread answer.
const spreadTick = 20 * time.Millisecond

// answerPings answers every held Ping, parked or proxied, over
// cfg.DrainSpread (at once without one).
func (s *Service) answerPings(ctx context.Context) {
	var wakes []func() bool
	if s.parking != nil {
		for _, ping := range s.parking.heldPings(true) {
			wakes = append(wakes, func() bool { return s.parking.wakeIfHeld(ping) })
		}
	}
	parked := len(wakes)
	for _, c := range s.drain.held(true) {
		wakes = append(wakes, func() bool { return s.drain.wake(c) })
	}
	if len(wakes) == 0 {
		return
	}
	shuffle := s.opts.shuffle
	if shuffle == nil {
		shuffle = rand.Shuffle
	}
	shuffle(len(wakes), func(i, j int) { wakes[i], wakes[j] = wakes[j], wakes[i] })
	after := s.opts.after
	if after == nil {
		after = time.After
	}
	t := time.Now()
	n := spreadAnswers(ctx, wakes, s.cfg.DrainSpread, s.now, after)
	s.log.Info("stopping: answered the held Pings with Status 1 so devices send them again elsewhere",
		"parked", parked, "proxied", len(wakes)-parked, "answered", n, "spread", s.cfg.DrainSpread, "took", time.Since(t))
}

// spreadAnswers calls wakes in order, in batches whose sizes differ by at
// most one, batch b due at window·b/batches after the first (spreadTick
// apart at least); without a window, all at once. The batches keep to the
// clock (now), not to the time the previous one took: on a saturated CPU
// a batch that is late goes at once, so the whole spread stays about the
// window (bench/drain.sh: waiting a tick after each batch stretched 2 s to
// 11 s). Once ctx ends the rest are called at once. It returns how many
// answered (a wake reports false for a request no longer held).
func spreadAnswers(ctx context.Context, wakes []func() bool, window time.Duration, now func() time.Time, after func(time.Duration) <-chan time.Time) int {
	batches := min(len(wakes), max(1, int(window/spreadTick)))
	answered := 0
	hurry := false
	start := now()
	for b := range batches {
		if b > 0 && !hurry {
			if d := start.Add(window * time.Duration(b) / time.Duration(batches)).Sub(now()); d > 0 {
				select {
				case <-after(d):
				case <-ctx.Done():
					hurry = true
				}
			}
		}
		for _, wake := range wakes[b*len(wakes)/batches : (b+1)*len(wakes)/batches] {
			if wake() {
				answered++
			}
		}
	}
	return answered
}
