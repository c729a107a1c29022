package edge

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmesh/segmesh/internal/testlog"
)

// streamResult is what one guardedStream call returned.
type streamResult struct {
	got bool
	err error
}

// TestAttackPanicAfterApplyCostsOneSnapshot (rvpanic3, review of 509be5f):
// after a stream panic the edge asks for the crl role's current snapshot
// (known_version 0), a whole snapshot again. Could a panic that follows
// every snapshot put in force make the edge download one at every
// reconnection, at the minimum backoff? It held: a panicking stream
// returns got=false even when it put a snapshot in force first, so watch
// keeps doubling its backoff (to maxBackoff, 30 s) while the panics go on;
// only the stream after a panic asks from 0, and the one after a clean
// end asks from the version held again (nothing is sent while it is
// current). The snapshot asked again is the one that clears the panic.
func TestAttackPanicAfterApplyCostsOneSnapshot(t *testing.T) {
	var onLog atomic.Bool
	k := newStreamRig(t, time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC), slog.New(testlog.PanicOn{Handler: slog.NewTextHandler(io.Discard, nil),
		Prefix: "revocation snapshot", Value: "log handler panicked on ", Armed: &onLog, Once: true}))
	r := k.r
	k.fake.revoke(k.ca, 0x77) // version 2
	onLog.Store(true)
	got, err := r.guardedStream(context.Background(), k.client)
	if got || !errors.Is(err, errStreamPanic) || r.current() != 1 || !r.panics.pending.Load() {
		t.Fatalf("a panic after the snapshot was put in force: got=%v err=%v generation %d pending %v; want got=false (watch's backoff grows), the panic, generation 1, pending",
			got, err, r.current(), r.panics.pending.Load())
	}
	// stream runs one stream until ctx ends; until says when to end it.
	stream := func(until func() bool) streamResult {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan streamResult, 1)
		go func() {
			got, err := r.guardedStream(ctx, k.client)
			done <- streamResult{got, err}
		}()
		waitFor(t, "the stream's progress", until)
		cancel()
		return <-done
	}
	res := stream(func() bool { return r.current() == 2 })
	if !res.got || r.panics.pending.Load() {
		t.Fatalf("the reconnection after the panic: %+v, pending %v; want the current snapshot put in force and the panic cleared", res, r.panics.pending.Load())
	}
	stream(func() bool { return k.client.streams.Load() == 3 })
	k.client.mu.Lock()
	known := slices.Clone(k.client.known)
	k.client.mu.Unlock()
	if want := []uint64{0, 0, 2}; !slices.Equal(known, want) {
		t.Fatalf("known_version of the streams %v, want %v: the current snapshot asked again only after a panic", known, want)
	}
	if r.current() != 2 {
		t.Fatalf("generation %d after a reconnection holding the current version, want 2 (nothing sent again)", r.current())
	}
}

// TestAttackSnapshotAfterAPanicWithoutTheCDP (rvpanic3, review of
// 509be5f): the first snapshot panics the edge, then the crl role (or a
// peer posing as it) sends a snapshot with no CRL of the configured
// distribution point. It clears the panic (a snapshot was put in force),
// but the edge must not go ready on it: it held, not ready with
// cdp_never_fetched, the certificate refused while the panic was pending.
func TestAttackSnapshotAfterAPanicWithoutTheCDP(t *testing.T) {
	k := newStreamRig(t, time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC), slog.New(slog.DiscardHandler))
	k.r.cfg.URLs = []string{labCDP}
	phone := leaf(t, k.ca.issue(t, certOpts{cn: "phone", serial: 0x79}).Certificate[0])
	k.client.panicVersion.Store(2)
	k.fake.revoke(k.ca, 0x77) // the first snapshot with a CRL (version 2), which panics whenever received
	k.watch(t)
	waitFor(t, "the panic counted", func() bool { return k.panics(t) >= 1 })
	if _, err := k.r.check(phone); !errors.Is(err, errNoSnapshot) {
		t.Fatalf("after a panic on the first snapshot: %v, want refused (no snapshot)", err)
	}
	// The crl role's current snapshot becomes one without the configured
	// distribution point's CRL. (Switching every Recv's panics off here
	// instead let a stream deliver version 2, received before the publish,
	// after the switch: its CRL covers the distribution point and the edge
	// was rightly ready, 11 failures in 40 runs under -race.)
	k.fake.publish()
	waitFor(t, "the empty snapshot in force", func() bool { return k.r.current() >= 1 && !k.r.panics.pending.Load() })
	reason, err := k.r.unready()
	if reason != unreadyCDPMissing || err == nil || !strings.Contains(err.Error(), labCDP) {
		t.Fatalf("unready = %q, %v; want %s naming the distribution point", reason, err, unreadyCDPMissing)
	}
}
