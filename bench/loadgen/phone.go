package loadgen

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"
)

// The lean phone client (Config.Client = PhoneClient).
//
// With net/http's client every reconnect of a phone costs the load
// generator a persistConn with its two goroutines, whose stacks grow again
// through each TLS handshake, and its buffers: in bench/drain.sh's takeover
// (4,900 phones reconnecting at once on the harness's CPU) segload took
// more CPU than the edge it measures (docs/benchmarks.md, "Session 8"). A
// real phone's CPU is its own, so the harness's cost only distorts the
// figure. A phone here is its worker's goroutine driving one *tls.Conn:
// the request's bytes written once per request (built once per worker),
// the answer read with http.ReadResponse through a reused bufio.Reader,
// the connection closed when the answer says Connection: close. It speaks
// HTTP/1.1 only and runs the closed loop only; stages, kinds, the error
// log, resumption and the Balancer work as with net/http's client.

// Client names the HTTP client the closed-loop workers use.
type Client string

const (
	// NetHTTPClient is net/http's client and transport (the default).
	NetHTTPClient Client = "net/http"
	// PhoneClient is the lean phone client of phone.go.
	PhoneClient Client = "phone"
)

// phone is one closed-loop worker's connection.
type phone struct {
	r      *runner
	worker int
	tls    *tls.Config
	req    []byte
	conn   *tls.Conn
	stop   func() bool // undoes the context.AfterFunc closing conn
	br     *bufio.Reader
}

// newPhone returns worker's phone; its first request dials.
func (r *runner) newPhone(worker int) *phone {
	c := r.clientTLS()
	c.NextProtos = []string{"http/1.1"}
	if c.ServerName == "" {
		c.ServerName = r.base.Hostname()
	}
	return &phone{r: r, worker: worker, tls: c, req: r.rawRequest(worker), br: bufio.NewReaderSize(nil, 1024)}
}

// rawRequest is worker's request as it goes on the wire.
func (r *runner) rawRequest(worker int) []byte {
	cmd := "Sync"
	q := "&User=segload&DeviceId=" + r.cfg.DevicePrefix + strconv.Itoa(worker) + "&DeviceType=iPhone"
	if r.cfg.Kind == Ping {
		cmd = "Ping"
		q += "&hold=" + strconv.Itoa(int(r.cfg.Hold/time.Second))
	}
	b := []byte("POST /Microsoft-Server-ActiveSync?Cmd=" + cmd + q + " HTTP/1.1\r\nHost: " + r.base.Host +
		"\r\nUser-Agent: Apple-iPhone/segload\r\nContent-Length: " + strconv.Itoa(len(r.body)) +
		"\r\nContent-Type: application/vnd.ms-sync.wbxml\r\nMS-ASProtocolVersion: 14.1\r\n\r\n")
	return append(b, r.body...)
}

// close drops the phone's connection.
func (p *phone) close() {
	if p.conn == nil {
		return
	}
	p.stop()
	_ = p.conn.Close()
	p.conn = nil
}

// dial connects and handshakes under deadline; the event's stage on error.
func (p *phone) dial(ctx context.Context, deadline time.Time) (string, string, error) {
	addr := p.r.addr(p.worker, p.r.base.Host)
	d := p.r.dialer()
	d.Deadline = deadline
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return addr, StageConnect, err
	}
	tc := tls.Client(raw, p.tls)
	// The run's end (or a signal) cuts whatever the phone waits for.
	p.stop = context.AfterFunc(ctx, func() { _ = raw.SetDeadline(time.Unix(1, 0)) })
	_ = raw.SetDeadline(deadline)
	if err := tc.HandshakeContext(ctx); err != nil {
		p.stop()
		_ = raw.Close()
		return addr, StageTLS, err
	}
	if tc.ConnectionState().DidResume {
		p.r.resumed.Add(1)
	}
	p.conn = tc
	p.br.Reset(tc)
	return addr, "", nil
}

// do sends one request and records it, as runner.do; it reports whether
// the caller should back off (after an error).
func (p *phone) do(ctx context.Context, start time.Time) bool {
	r := p.r
	deadline := start.Add(r.cfg.Timeout)
	reused := p.conn != nil
	fail := func(edge, stage, kind string, err error) bool {
		p.close()
		if ctx.Err() != nil {
			// The run's own deadline cut the request: not the server's fault.
			r.reqs.Add(^uint64(0))
			return true
		}
		e := ErrorEvent{TimeMs: time.Now().UnixMilli(), StartMs: start.UnixMilli(), Worker: p.worker, Edge: edge,
			Stage: stage, Reused: reused, Kind: kind}
		if err != nil {
			e.Err = err.Error()
		}
		r.failed(e)
		return true
	}
	if p.conn == nil {
		if edge, stage, err := p.dial(ctx, deadline); err != nil {
			return fail(edge, stage, classify(err), err)
		}
	} else {
		_ = p.conn.SetDeadline(deadline)
	}
	edge := p.conn.RemoteAddr().String()
	if _, err := p.conn.Write(p.req); err != nil {
		return fail(edge, StageWrite, classify(err), err)
	}
	resp, err := http.ReadResponse(p.br, nil)
	if err != nil {
		return fail(edge, StageWait, classify(err), err)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return fail(edge, StageBody, "body_"+classify(err), err)
	}
	if resp.Close || r.cfg.Mode == Handshake {
		p.close()
	}
	if start.Before(r.from) {
		r.reqs.Add(^uint64(0))
		return false
	}
	if resp.StatusCode != http.StatusOK {
		e := ErrorEvent{TimeMs: time.Now().UnixMilli(), StartMs: start.UnixMilli(), Worker: p.worker, Edge: edge,
			Stage: StageStatus, Reused: reused, Kind: "http_" + strconv.Itoa(resp.StatusCode)}
		r.failed(e)
		return false
	}
	r.hist.Record(time.Since(start))
	r.ok.Add(1)
	return false
}

// errPhoneOpenLoop refuses the phone client in the open loop.
var errPhoneOpenLoop = errors.New("loadgen: the phone client runs the closed loop only (-c, not -rate)")

// phoneLoop is closedLoop's worker w with the phone client.
func (r *runner) phoneLoop(ctx context.Context, w int) {
	p := r.newPhone(w)
	defer p.close()
	onConn := 0
	for ctx.Err() == nil && r.claim() {
		if p.do(ctx, time.Now()) {
			onConn = 0
			backoff(ctx, r.cfg.ErrorBackoff)
			continue
		}
		onConn++
		if p.conn == nil {
			onConn = 0
		} else if r.cfg.ReqsPerConn > 0 && onConn >= r.cfg.ReqsPerConn {
			p.close()
			onConn = 0
		}
	}
}

// backoff waits d (a phone's back-off after a failed request) or until ctx
// ends.
func backoff(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
