package edge

import (
	"context"
	"sync"
	"time"
)

// The parking lot: every parked Ping (upstream_park.go) is registered here
// from the moment it is parked until its connection goes back to the
// server, so that Stop can answer or cut them (drain).

// parking tracks the parked Pings for the drain on Stop: the value is true
// once the Ping was answered and its connection waits for the next request.
type parking struct {
	mu      sync.Mutex
	pings   map[*parkedPing]bool
	closing bool
	idle    chan struct{} // closed when pings empties while closing
}

func newParking() *parking {
	return &parking{pings: map[*parkedPing]bool{}}
}

// keep registers ping as held at Exchange, or marks it answered with its
// connection idle; false once Stop began: no new Ping is parked, and an
// answered one's connection is not kept (the server closes idle
// connections at once on Shutdown, and so does the edge).
func (lot *parking) keep(ping *parkedPing, answered bool) bool {
	lot.mu.Lock()
	defer lot.mu.Unlock()
	if lot.closing {
		return false
	}
	lot.pings[ping] = answered
	return true
}

func (lot *parking) done(ping *parkedPing) {
	lot.mu.Lock()
	defer lot.mu.Unlock()
	delete(lot.pings, ping)
	if lot.closing && len(lot.pings) == 0 && lot.idle != nil {
		close(lot.idle)
		lot.idle = nil
	}
}

// len returns the number of parked Pings.
func (lot *parking) len() int {
	lot.mu.Lock()
	defer lot.mu.Unlock()
	return len(lot.pings)
}

// counts returns the parked Pings still held at Exchange and those answered
// whose connection waits for the device's next request before going back to
// the server.
func (lot *parking) counts() (held, answered int) {
	lot.mu.Lock()
	defer lot.mu.Unlock()
	for _, idle := range lot.pings {
		if idle {
			answered++
		} else {
			held++
		}
	}
	return held, answered
}

// drain refuses new Pings, waits for the parked ones to be answered until
// ctx ends, then closes the rest and waits for their goroutines. If some
// are still there after slowAfter, slow gets how many are in each stage.
func (lot *parking) drain(ctx context.Context, slowAfter time.Duration, slow func(map[string]int)) error {
	lot.mu.Lock()
	lot.closing = true
	for ping, idle := range lot.pings {
		if idle {
			ping.closeIdle()
		}
	}
	if len(lot.pings) == 0 {
		lot.mu.Unlock()
		return nil
	}
	idle := make(chan struct{})
	lot.idle = idle
	lot.mu.Unlock()
	t := time.NewTimer(slowAfter)
	defer t.Stop()
	select {
	case <-idle:
		return nil
	case <-t.C:
		slow(lot.stages())
		select {
		case <-idle:
			return nil
		case <-ctx.Done():
		}
	case <-ctx.Done():
	}
	lot.mu.Lock()
	for ping := range lot.pings {
		ping.cut()
	}
	lot.mu.Unlock()
	<-idle
	return ctx.Err()
}
