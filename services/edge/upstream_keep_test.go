package edge

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// closeConn is a connection that only notes it was closed.
type closeConn struct {
	net.Conn
	closed atomic.Bool
}

func (c *closeConn) Close() error {
	c.closed.Store(true)
	return nil
}

// TestKeepRuleVerdicts: the net/http engine's keep rule (upstream_keep.go)
// after a request with a body: the connection stays the transport's only
// for an answer below 300; otherwise it is closed at the answer's end (at
// once without a body, when the body is read or closed), and on an error.
// A request the transport hands a pending connection waits for the
// verdict and closes a dropped connection before writing on it.
func TestKeepRuleVerdicts(t *testing.T) {
	answer := func(status int, body string) *http.Response {
		r := &http.Response{StatusCode: status, Body: http.NoBody}
		if body != "" {
			r.Body = io.NopCloser(strings.NewReader(body))
		}
		return r
	}
	readAll := func(r *http.Response) { _, _ = io.Copy(io.Discard, r.Body) }
	closeBody := func(r *http.Response) { _ = r.Body.Close() }
	for _, tc := range []struct {
		name string
		resp *http.Response
		err  error
		// end ends the answer's body as the proxy does; nil: nothing.
		end       func(*http.Response)
		closedNow bool // closed when settle returns
		drop      bool // closed at the answer's end
	}{
		{name: "200 with a body: kept", resp: answer(200, "ok"), end: readAll},
		{name: "204: kept", resp: answer(204, "")},
		{name: "101: kept (the transport's rules)", resp: answer(101, "")},
		{name: "400 without a body: dropped at once", resp: answer(400, ""), closedNow: true, drop: true},
		{name: "302 without a body: dropped at once", resp: answer(302, ""), closedNow: true, drop: true},
		{name: "401 with a body read to its end: dropped then", resp: answer(401, "denied"), end: readAll, drop: true},
		{name: "500 with a body closed unread: dropped then", resp: answer(500, "error"), end: closeBody, drop: true},
		{name: "an error: dropped", err: errors.New("broken"), closedNow: true, drop: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var k keepRule
			var turn keepTurn
			c := &closeConn{}
			k.hold(&turn, c)
			awaited := make(chan struct{})
			go func() {
				k.await(c)
				close(awaited)
			}()
			resp := k.settle(&turn, tc.resp, tc.err)
			if resp != tc.resp {
				t.Fatal("settle returned another answer")
			}
			if got := c.closed.Load(); got != tc.closedNow {
				t.Fatalf("closed when settled: %v, want %v", got, tc.closedNow)
			}
			if tc.end != nil {
				tc.end(resp)
			}
			select {
			case <-awaited:
			case <-time.After(10 * time.Second):
				t.Fatal("a request handed the connection still waits for the verdict after the answer's end")
			}
			if got := c.closed.Load(); got != tc.drop {
				t.Fatalf("closed at the answer's end: %v, want %v", got, tc.drop)
			}
			if n := k.n.Load(); n != 0 || len(k.pending) != 0 {
				t.Fatalf("%d verdicts still pending (%d connections)", n, len(k.pending))
			}
		})
	}
}

// TestKeepRuleWaitsForTheVerdict: a request handed a connection whose
// verdict is pending does not go on until the verdict is given; a
// connection the transport left for another (its request sent again) is
// dropped; a connection without a pending verdict is left alone.
func TestKeepRuleWaitsForTheVerdict(t *testing.T) {
	var k keepRule
	var turn keepTurn
	first, second, other := &closeConn{}, &closeConn{}, &closeConn{}
	k.hold(&turn, first)
	k.hold(&turn, second) // the transport sent the request again on second
	if !first.closed.Load() {
		t.Fatal("the connection the transport left is not dropped")
	}
	if k.await(first) { // decided and closed already: nothing pending
		t.Fatal("await of a connection whose verdict was given waited for it again")
	}
	if k.await(other) || other.closed.Load() {
		t.Fatal("a connection with no verdict pending was closed")
	}
	awaited := make(chan struct{})
	var dropped atomic.Bool
	go func() {
		dropped.Store(k.await(second))
		close(awaited)
	}()
	select {
	case <-awaited:
		t.Fatal("await returned before the verdict")
	default:
	}
	k.settle(&turn, &http.Response{StatusCode: 200, Body: http.NoBody}, nil)
	select {
	case <-awaited:
	case <-time.After(10 * time.Second):
		t.Fatal("await did not return after the verdict")
	}
	if second.closed.Load() || dropped.Load() {
		t.Fatal("a kept connection was closed")
	}
}
