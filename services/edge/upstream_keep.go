package edge

import (
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync"
	"sync/atomic"

	"golang.org/x/net/http/httpguts"
)

// The keep rule of the net/http engine (the reverse proxy's transport):
// after a request with a body, an upstream connection is kept only when the
// answer is below 300, the relay's rule (relayOnce). An answer given at once
// with the body unread (an error, a redirect: a "CL.0" desync at Exchange)
// leaves the device's body on the connection, where Exchange reads it as
// the next request; kept, the connection then gives that request's answer
// to the next user whose request goes on it
// (TestAttackRelaySmuggledThroughAnEarlyAnswer).
//
// http.Transport decides itself whether it keeps a connection, when it has
// read the answer's header (an answer without a body: before RoundTrip
// returns it) or its body's end, and has no hook between the status and
// that decision. The rule is kept beside it, on the connections the
// transport hands over (httptrace's GotConn):
//   - a request with a body marks its connection pending;
//   - its answer gives the verdict: below 300 the connection is the
//     transport's again; otherwise it is closed when the answer's body ends
//     (read or closed), at once when it has none;
//   - a request handed a pending connection waits for the verdict (the
//     transport may give a connection back before RoundTrip returns the
//     answer: no body), and closes a dropped one before writing a byte. The
//     transport then sends the request again on a new connection when it can
//     (no body, or GetBody: a body within segmesh.edge.replayMaxBytes), as
//     after any idle connection the server closed; a larger body fails (502).
//     This happens only when the request was handed the connection in the
//     moment between the transport's keeping it and the verdict.
//
// A request sent with "Expect: 100-continue" answered below 300 before any
// 100 Continue is dropped too: Exchange answered without asking for the
// body (RFC 9110 section 10.1.1 allows it), and http.Transport then sends
// the body anyway on the connection it keeps, where Exchange may read it as
// the next request (TestAttackExpectAnsweredBeforeTheBody). Unlike an early
// success to a request without Expect, this one is visible to the client.
//
// Why not Connection: close on every request with a body: every EAS command
// is a POST, so the engine would keep no connection at all.

// keepRule holds the verdicts pending on upstream connections.
type keepRule struct {
	// n counts the pending verdicts: await looks no further when none is.
	n       atomic.Int32
	mu      sync.Mutex
	pending map[net.Conn]*keepVerdict
}

// keepVerdict is the verdict on one connection after a request with a body:
// drop is set before decided is closed.
type keepVerdict struct {
	decided chan struct{}
	drop    bool
}

// keepTurn is one attempt's connection and its pending verdict.
type keepTurn struct {
	c net.Conn
	v *keepVerdict
	// continued, for a request sent with Expect: 100-continue, is set
	// when Exchange answered 100 Continue (nil without Expect).
	continued *atomic.Bool
}

// unasked reports whether t's request carried Expect: 100-continue and
// Exchange gave its answer without asking for the body.
func (t *keepTurn) unasked() bool { return t.continued != nil && !t.continued.Load() }

// hold marks c pending for t's request; a connection t held before (the
// transport sent the request again on another) is dropped.
func (k *keepRule) hold(t *keepTurn, c net.Conn) {
	if t.v != nil {
		k.decide(t, true)
	}
	v := &keepVerdict{decided: make(chan struct{})}
	k.n.Add(1)
	k.mu.Lock()
	if k.pending == nil {
		k.pending = map[net.Conn]*keepVerdict{}
	}
	k.pending[c] = v
	k.mu.Unlock()
	t.c, t.v = c, v
}

// await waits for c's pending verdict, if any, and closes c when dropped;
// it reports whether c was dropped.
func (k *keepRule) await(c net.Conn) bool {
	if k.n.Load() == 0 {
		return false
	}
	k.mu.Lock()
	v := k.pending[c]
	k.mu.Unlock()
	if v == nil {
		return false
	}
	<-v.decided
	if v.drop {
		_ = c.Close()
	}
	return v.drop
}

// decide gives t's verdict, once; a dropped connection is closed first.
func (k *keepRule) decide(t *keepTurn, drop bool) {
	v, c := t.v, t.c
	if v == nil {
		return
	}
	t.v, t.c = nil, nil
	if drop {
		_ = c.Close()
	}
	k.mu.Lock()
	if k.pending[c] == v {
		delete(k.pending, c)
	}
	k.mu.Unlock()
	k.n.Add(-1)
	v.drop = drop
	close(v.decided)
}

// settle gives the verdict of t's attempt from its outcome, and returns
// resp, whose body closes the connection at its end when dropped.
func (k *keepRule) settle(t *keepTurn, resp *http.Response, err error) *http.Response {
	switch {
	case t.v == nil:
	case err != nil || resp == nil:
		k.decide(t, true)
	case resp.StatusCode < http.StatusMultipleChoices && !t.unasked():
		k.decide(t, false)
	case resp.Body == nil || resp.Body == http.NoBody:
		k.decide(t, true)
	default:
		resp.Body = &dropBody{ReadCloser: resp.Body, k: k, t: keepTurn{c: t.c, v: t.v}}
		t.c, t.v = nil, nil
	}
	return resp
}

// dropBody is the body of an answer whose connection is not kept: at its
// end, read or closed, the connection is closed and the verdict given.
type dropBody struct {
	io.ReadCloser
	k    *keepRule
	t    keepTurn
	once sync.Once
}

func (b *dropBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.drop()
	}
	return n, err
}

// Close closes the body and the connection.
func (b *dropBody) Close() error {
	err := b.ReadCloser.Close()
	b.drop()
	return err
}

func (b *dropBody) drop() { b.once.Do(func() { b.k.decide(&b.t, true) }) }

// traced returns req with the trace the proxy path needs on the connection
// the transport picks: the keep rule for every request, and for a Kerberos
// request to an https upstream the channel binding of its Negotiate header
// (rebind).
func (s *Service) traced(req *http.Request, t *keepTurn) *http.Request {
	state, _ := req.Context().Value(requestKey{}).(*requestState)
	bind := state != nil && state.ticket != nil && s.upstreams.route.Load().binders[req.URL.Host] != nil
	body := req.Body != nil && req.Body != http.NoBody
	h, host, k := req.Header, req.URL.Host, &s.upstreams.keep
	if body && httpguts.HeaderValuesContainsToken(req.Header["Expect"], "100-continue") {
		t.continued = new(atomic.Bool)
	}
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		if k.await(info.Conn) {
			return // closed: the transport sends req again on another
		}
		if body {
			k.hold(t, info.Conn)
		}
		if bind {
			s.rebind(h, state, host, info.Conn)
		}
	}}
	if c := t.continued; c != nil {
		trace.Got100Continue = func() { c.Store(true) }
	}
	return req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
}
