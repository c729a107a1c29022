package framingtest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync/atomic"
	"time"
)

// Dial opens a device connection to the engine under test from the
// loopback address local (bind it: the engine names it in
// X-Forwarded-For, which is how the Capture tells devices apart).
type Dial func(local net.IP) (net.Conn, error)

// Sentinel is a well-formed request that closes the connection. Appended
// to a device's bytes (WithSentinel) it makes the connection end by itself
// when net/http read them as whole requests, and shows the engine kept in
// step: it reaches Exchange as its own request.
const Sentinel = "GET /Microsoft-Server-ActiveSync?Cmd=Sync&framing=sentinel HTTP/1.1\r\nHost: edge.lab.test\r\nConnection: close\r\n\r\n"

// SentinelTarget is the Sentinel's target.
const SentinelTarget = "/Microsoft-Server-ActiveSync?Cmd=Sync&framing=sentinel"

// WithSentinel returns raw followed by the Sentinel.
func WithSentinel(raw []byte) []byte {
	return append(bytes.Clone(raw), Sentinel...)
}

// Result is one device's run: what net/http accepted, and what reached
// Exchange.
type Result struct {
	Accepted []Request
	End      End
	Refusal  error // why net/http refused, when End is Refused
	Reached  []Request
	// Held: the engine kept the connection open after net/http would have
	// closed it or the device closed its side (Run gave up waiting).
	Held bool
	// Findings are requests that reached Exchange against the rule, from
	// this device or, arriving late, from one before it.
	Findings []error
}

// SentinelAccepted reports whether net/http read the Sentinel as the last
// request, whole.
func (r Result) SentinelAccepted() bool {
	n := len(r.Accepted)
	return r.End == Closed && n > 0 && r.Accepted[n-1].Target == SentinelTarget && r.Accepted[n-1].Method == "GET"
}

// SentinelReached reports whether the Sentinel reached Exchange.
func (r Result) SentinelReached() bool {
	for _, q := range r.Reached {
		if q.Target == SentinelTarget && q.Method == "GET" && len(q.Body) == 0 {
			return true
		}
	}
	return false
}

// Supported says why Run cannot work here, or nil: it binds device
// connections to distinct 127.0.0.0/8 addresses, which only Linux's
// loopback answers without configuration.
func Supported() error {
	if runtime.GOOS != "linux" {
		return errors.New("framingtest: needs Linux (a device address per run in 127.0.0.0/8)")
	}
	return nil
}

var sourceSeq atomic.Uint32

// nextSource returns a loopback address not used before in this process,
// 127.1.0.1 upwards, never .0 or .255 in the last byte.
func nextSource() net.IP {
	n := sourceSeq.Add(1)
	q := n / 254
	return net.IPv4(127, byte(1+q>>16), byte(q>>8), byte(1+n%254))
}

// waitBound bounds each wait for the engine to answer or close: it ends a
// wait for an engine that holds the connection open, it is no assertion.
const waitBound = 10 * time.Second

// Run sends raw from a new device connection, reads everything the engine
// answers until it closes the connection, and returns the run's Result.
// Raw is sent whole; when net/http would wait for more (End Open) the
// device closes its side after it, as a device whose request ended would.
func (c *Capture) Run(dial Dial, raw []byte) (Result, error) {
	if err := Supported(); err != nil {
		return Result{}, err
	}
	reqs, end, refusal := Accepted(raw)
	res := Result{Accepted: reqs, End: end, Refusal: refusal}
	src := nextSource()
	e := &expected{input: raw, reqs: reqs}
	c.mu.Lock()
	c.want[src.String()] = e
	c.mu.Unlock()
	conn, err := dial(src)
	if err != nil {
		return res, fmt.Errorf("framingtest: dial from %s: %w", src, err)
	}
	defer conn.Close()
	_ = conn.SetWriteDeadline(time.Now().Add(waitBound))
	_, _ = conn.Write(raw) // the engine may close first: then it refused
	if end == Open {
		closeWrite(conn)
	}
	if !drain(conn) {
		closeWrite(conn)
		res.Held = !drain(conn)
	}
	c.mu.Lock()
	res.Reached = append([]Request(nil), e.reached...)
	res.Findings, c.findings = c.findings, nil
	c.mu.Unlock()
	return res, nil
}

// drain reads until the engine closes; false when it did not within the
// bound.
func drain(conn net.Conn) bool {
	_ = conn.SetReadDeadline(time.Now().Add(waitBound))
	_, err := io.Copy(io.Discard, conn)
	return !errors.Is(err, os.ErrDeadlineExceeded)
}

func closeWrite(conn net.Conn) {
	if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}
