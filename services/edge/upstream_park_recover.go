package edge

import (
	"net/http"

	"github.com/segmesh/segmesh/pkg/telemetry"
)

// runPhase is how far a parked Ping's run got: what a panic there leaves
// to undo.
type runPhase int

const (
	phaseHeld       runPhase = iota // held at Exchange; watchDevice may run
	phaseDelivering                 // watchDevice ended; nothing written to the device yet
	phaseWriting                    // the answer's bytes may have reached the device
	phaseFinishing                  // the access log and metrics are being written
	phaseHandBack                   // answered; waiting for the device's next request
)

// recoverRun ends a parked Ping whose goroutine panicked: a client or
// parser meeting bytes it did not expect (the ticket fetch after
// Exchange's 401, the check of Exchange's mutual-authentication reply).
// The Ping runs in a goroutine of its own, not the device request's, so
// neither panicRecovery nor net/http would see the panic: it ended the
// edge process (TestAttackPanicInAParkedPing).
//
// It logs the panic at error level with its stack and counts it in
// segmesh_edge_handler_panics, as panicRecovery does for a handler; closes
// the upstream connection; and, when nothing of an answer has been written
// yet, answers the device 503 with Retry-After and Connection: close. 503
// is the edge's answer when it cannot complete a request for a reason of
// its own that may pass (a role unavailable): the device tries again after
// Retry-After, as after a failed ticket fetch; 502 would blame Exchange,
// which may have answered well. The device never sees the panic value.
// Once bytes of the answer may have gone out, the connection is only
// closed. The access log gets its line unless the panic came from writing
// it. run's deferred parking.done, which runs after this, takes the Ping
// out of the lot's counts.
func (ping *parkedPing) recoverRun() {
	v := recover()
	if v == nil {
		return
	}
	s := ping.s
	s.reportPanic(ping.ctx, "a parked Ping caused a panic in the edge; its connections were closed and the edge keeps serving",
		v, telemetry.AttrUPN, ping.state.upn, telemetry.AttrDeviceID, ping.state.eas.DeviceID)
	ping.mu.Lock()
	up := ping.up
	ping.mu.Unlock()
	if up != nil {
		_ = up.Close()
	}
	failed := &Failure{Status: http.StatusServiceUnavailable, RetryAfter: s.cfg.RetryAfter,
		Reason: "the edge failed while handling the parked Ping (a panic, logged with its stack)",
		Fix:    `report the "parked Ping caused a panic" log line and its stack to segmesh's maintainers`}
	phase := ping.phase
	switch phase {
	case phaseHeld:
		ping.endWatch()
		fallthrough
	case phaseDelivering:
		ping.closeDevice = true
		ping.deliver(nil, failed)
	}
	_ = ping.dev.Close()
	if phase == phaseHandBack && ping.devCert != nil {
		s.peers.remove(ping.dev.NetConn())
	}
	if phase < phaseFinishing {
		state := *ping.state
		state.parked = false
		if state.failure == nil {
			state.failure = failed
		}
		s.finish(ping.ctx, ping.span, ping.rec, ping.req.WithContext(ping.ctx), &state, ping.start)
	}
}
