package loadgen

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http/httptrace"
	"sync"
	"sync/atomic"
	"time"
)

// ErrorEvent is one failed request as Config.ErrorLog receives it (one JSON
// object a line). With the times of a restart's steps it tells which errors
// a step caused: bench/drain.sh sorts them into phases.
type ErrorEvent struct {
	// TimeMs is when the request failed, StartMs when it started (Unix ms).
	TimeMs  int64 `json:"t_ms"`
	StartMs int64 `json:"start_ms"`
	// Worker is the closed-loop worker (the phone).
	Worker int `json:"worker"`
	// Edge is the address the request's connection went to (or was being
	// dialled to); empty when no dial was seen.
	Edge string `json:"edge"`
	// Stage is how far the request got: StageConnect, StageTLS,
	// StageWrite, StageWait, StageBody or StageStatus.
	Stage string `json:"stage"`
	// Reused reports a kept-alive connection (a request on a connection
	// the server may just have closed).
	Reused bool `json:"reused"`
	// Kind is the error's class as counted in Result.Errors.
	Kind string `json:"kind"`
	// Err is the error's text.
	Err string `json:"err"`
}

// The stages of ErrorEvent.
const (
	// StageConnect: the TCP connection was not made (refused, no route).
	StageConnect = "connect"
	// StageTLS: connected, the TLS handshake failed.
	StageTLS = "tls"
	// StageWrite: the connection was ready, the request was not written.
	StageWrite = "write"
	// StageWait: written, no response header came.
	StageWait = "wait"
	// StageBody: the response header came, its body was cut.
	StageBody = "body"
	// StageStatus: a complete answer other than 200.
	StageStatus = "status"
)

// eventLog writes ErrorEvents to a writer shared by the workers.
type eventLog struct {
	mu  sync.Mutex
	enc *json.Encoder
	err error
}

func newEventLog(w io.Writer) *eventLog {
	if w == nil {
		return nil
	}
	return &eventLog{enc: json.NewEncoder(w)}
}

func (l *eventLog) write(e ErrorEvent) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err == nil {
		l.err = l.enc.Encode(e)
	}
}

// reqTrace follows one request through its connection's steps.
type reqTrace struct {
	mu                                    sync.Mutex
	edge                                  string
	reused                                bool
	connected, tlsStarted, gotConn, wrote bool
	// resumed counts the handshakes of new connections that resumed a
	// TLS session (nil: not counted).
	resumed *atomic.Uint64
}

func (t *reqTrace) clientTrace() *httptrace.ClientTrace {
	return &httptrace.ClientTrace{
		ConnectStart: func(_, addr string) {
			t.mu.Lock()
			t.edge = addr
			t.mu.Unlock()
		},
		ConnectDone: func(_, _ string, err error) {
			t.mu.Lock()
			t.connected = err == nil
			t.mu.Unlock()
		},
		TLSHandshakeStart: func() {
			t.mu.Lock()
			t.tlsStarted = true
			t.mu.Unlock()
		},
		TLSHandshakeDone: func(cs tls.ConnectionState, err error) {
			if err == nil && cs.DidResume && t.resumed != nil {
				t.resumed.Add(1)
			}
		},
		GotConn: func(i httptrace.GotConnInfo) {
			t.mu.Lock()
			t.gotConn, t.reused = true, i.Reused
			if i.Conn != nil {
				t.edge = i.Conn.RemoteAddr().String()
			}
			t.mu.Unlock()
		},
		WroteRequest: func(i httptrace.WroteRequestInfo) {
			t.mu.Lock()
			t.wrote = i.Err == nil
			t.mu.Unlock()
		},
	}
}

// event describes the failure of the traced request; stage overrides the
// traced stage when set (body, status).
func (t *reqTrace) event(worker int, start time.Time, stage, kind string, err error) ErrorEvent {
	t.mu.Lock()
	defer t.mu.Unlock()
	if stage == "" {
		switch {
		case t.wrote:
			stage = StageWait
		case t.gotConn:
			stage = StageWrite
		case t.tlsStarted || t.connected:
			stage = StageTLS
		default:
			stage = StageConnect
		}
	}
	e := ErrorEvent{TimeMs: time.Now().UnixMilli(), StartMs: start.UnixMilli(), Worker: worker, Edge: t.edge,
		Stage: stage, Reused: t.reused, Kind: kind}
	if err != nil {
		e.Err = err.Error()
	}
	return e
}
