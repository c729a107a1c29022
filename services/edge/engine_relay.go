package edge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"
)

// The relay: the edge's own HTTP/1.1 engine on Exchange's side
// (segmesh.edge.http1Engine "relay", the default since issue 25), in place of
// httputil.ReverseProxy and http.Transport for the device requests that are
// not Pings. It is stage A of issue 25: net/http's server still reads the
// device's request and writes the answer; the relay takes over from the
// request policy's authenticate step (policy.go) to the device's
// ResponseWriter.
//
// What it saves over the reverse proxy, per request: the clone of the
// request and of its header (the device's header is rewritten in place),
// the transport's hand-offs of the request and the answer between the
// handler's goroutine and each connection's two goroutines (readLoop,
// writeLoop: channel sends and goroutine switches, and on a pinned core
// the scheduler's cost), the copy of the answer's header, the
// per-request body wrappers. Everything is done in the handler's
// goroutine: the request is written with net/http's Request.Write, the
// answer read with net/http's http.ReadResponse on the connection's own
// reusable bufio reader (engine_relay_pool.go), so neither direction's
// framing (Content-Length, chunked, trailers, HEAD, 1xx, 204/304) is the
// edge's own code.
//
// The rules are the request policy's, called as the other paths call them:
// rewrite (the outbound header rule; authorize), requireNegotiate before any
// byte goes out, rebind for the channel binding of the connection used,
// failover, renewAfter401 and one more try, modifyResponse, fail, and
// finish (the handler's). What it does not take — a Ping (parked, or
// tracked by the drain through the reverse proxy), HTTP/2, a request with
// Upgrade or Expect — goes to the reverse proxy as before (relayable).
//
// Why files in the edge package and not a package of its own: the relay
// reads and writes the per-request state (requestState, the recorder) and
// calls the policy's unexported rules, as the parked Ping does (doc.go).

// relayable reports whether the relay takes r.
func (s *Service) relayable(r *http.Request, state *requestState) bool {
	if s.relay == nil || r.ProtoMajor != 1 || isHeld(state) {
		return false
	}
	_, upgrade := r.Header["Upgrade"]
	_, expect := r.Header["Expect"]
	return !upgrade && !expect
}

// relayServe sends r to Exchange through the relay and writes the answer to
// rec, or the failure.
func (s *Service) relayServe(rec *recorder, r *http.Request, state *requestState) {
	start := time.Now()
	resp, err := s.relayRoundTrip(rec, r, state)
	s.metrics.upstreamDone(r.Context(), time.Since(start))
	if err == nil {
		if err = s.modifyResponse(resp); err != nil {
			_ = resp.Body.Close()
		}
	}
	if err != nil {
		s.fail(rec, state, err)
		return
	}
	s.relayAnswer(rec, resp)
}

// relayOut returns the request the relay sends for r: r's header map itself,
// rewritten in place by the outbound header rule (rewrite), on a copy of r
// with a URL of its own (the access line reads r's).
func (s *Service) relayOut(r *http.Request) *http.Request {
	rr := &relayRequest{req: *r, url: *r.URL}
	out := &rr.req
	out.URL = &rr.url
	out.RequestURI, out.Close = "", false
	if r.ContentLength == 0 {
		out.Body = nil
	}
	in := r
	if te, ok := r.Header["Te"]; ok {
		// rewrite reads the device's Te from In: keep it from the in-place
		// removal of hop-by-hop headers.
		c := new(http.Request)
		*c = *r
		c.Header = http.Header{"Te": te}
		in = c
	}
	s.rewrite(&httputil.ProxyRequest{In: in, Out: out})
	return out
}

// relayRequest is the request the relay sends and its URL, in one
// allocation instead of two.
type relayRequest struct {
	req http.Request
	url url.URL
}

// relayRoundTrip sends r and returns Exchange's final answer; after a 401
// the 401 rule (renewAfter401) may send it once more with a new ticket.
func (s *Service) relayRoundTrip(rec *recorder, r *http.Request, state *requestState) (*http.Response, error) {
	out := s.relayOut(r)
	if err := s.requireNegotiate(out.Header, state); err != nil {
		return nil, err
	}
	resp, err := s.relaySend(rec, out, state)
	if err != nil {
		return nil, err
	}
	again, err := s.renewAfter401(r.Context(), state, resp, replayable(out))
	if err != nil {
		_ = resp.Body.Close()
		return nil, err
	}
	if !again {
		return resp, nil
	}
	if err := rewind(out); err != nil {
		return nil, err
	}
	s.authorize(out.Header, state, out.URL.Host)
	if err := s.requireNegotiate(out.Header, state); err != nil {
		return nil, err
	}
	return s.relaySend(rec, out, state)
}

// rewind gives out a fresh body for another attempt.
func rewind(out *http.Request) error {
	if out.Body == nil || out.Body == http.NoBody {
		return nil
	}
	b, err := out.GetBody()
	if err != nil {
		return fmt.Errorf("replay request body: %w", err)
	}
	out.Body = b
	return nil
}

// relaySend sends out to the upstream failover picks, and once more on a
// new connection when a reused one turns out closed before any answer
// byte (Exchange closed it while idle), the body can be sent again and the
// request is idempotent, with a new authenticator, as http.Transport
// retries such a request. A POST is not sent again: Exchange may have read
// and carried it out before the connection ended
// (TestAttackRelayResendsAfterExchangeReadTheRequest).
func (s *Service) relaySend(rec *recorder, out *http.Request, state *requestState) (*http.Response, error) {
	var resp *http.Response
	again := replayable(out)
	resend := again && idempotent(out)
	err := s.failover(again, func(u *url.URL, first bool) error {
		if first {
			// The Exchange out is addressed to (its Host, the SPN of its
			// ticket), as the net/http engine sends it: the preferred one
			// may have changed since rewrite chose it (a reload, another
			// request's failover), and a 401 retry comes later still
			// (TestAttackRetryKeepsTheAddressedExchange).
			u = out.URL
		} else {
			if err := rewind(out); err != nil {
				return err
			}
			out.URL.Scheme, out.URL.Host = u.Scheme, u.Host
		}
		var err error
		var pc *relayConn
		resp, pc, err = s.relayOnce(rec, out, state, u)
		if err != nil && pc != nil && pc.reused && resend && errors.Is(err, errRelayStale) {
			if err = rewind(out); err != nil {
				return err
			}
			s.authorize(out.Header, state, u.Host)
			if err = s.requireNegotiate(out.Header, state); err != nil {
				return err
			}
			resp, _, err = s.relayOnce(rec, out, state, u)
		}
		return err
	})
	return resp, err
}

// errRelayStale means a reused upstream connection ended before any byte
// of the answer.
var errRelayStale = errors.New("edge: relay: Exchange closed a kept-alive connection before answering")

// relayOnce sends out on one connection to u (reused or dialled) and reads
// the final answer, relaying informational ones to the device. The answer's
// body gives the connection back when read to its end and closed. The
// connection is closed when the request's context ends first (the device
// went away), as http.Transport does.
func (s *Service) relayOnce(rec *recorder, out *http.Request, state *requestState, u *url.URL) (*http.Response, *relayConn, error) {
	ctx := out.Context()
	pc, err := s.relay.get(ctx, u)
	if err != nil {
		return nil, nil, err
	}
	s.rebind(out.Header, state, u.Host, pc.conn)
	if err := s.requireNegotiate(out.Header, state); err != nil {
		s.relay.put(pc)
		return nil, nil, err
	}
	conn := pc.conn
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	fail := func(err error) (*http.Response, *relayConn, error) {
		stop()
		s.relay.discard(pc)
		if ctx.Err() != nil {
			return nil, pc, fmt.Errorf("edge: relay: %w", context.Cause(ctx))
		}
		return nil, pc, err
	}
	if err := pc.write(out); err != nil {
		return fail(pc.stale(err, false))
	}
	s.relay.sent.Add(1)
	var got1xx bool
	resp, err := pc.read(out, func(info *http.Response) error {
		got1xx = true
		return relayInformational(rec, info)
	})
	if err != nil {
		return fail(pc.stale(err, got1xx))
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		_ = resp.Body.Close()
		return fail(errSwitchedProtocols)
	}
	// After a request with a body only a success shows that Exchange read
	// the body: answered at once with the body unread (an error, a
	// redirect), the connection would carry the device's body to Exchange
	// as the next request, whose answer another user's request then gets
	// (TestAttackRelaySmuggledThroughAnEarlyAnswer). The whole rule, the
	// net/http engine's too (upstream_keep.go): the request was written in
	// full before its answer was read (nginx's request_body_sent,
	// http.Transport's wroteRequest), the answer was read to its end and
	// neither side asked to close, and after a request with a body the
	// answer is below 300. A success that left the body unread breaks RFC
	// 9112 section 9.3 (the server reads the whole body or closes) and no
	// client can see it: the poll before reuse drops the connection when
	// Exchange answers the body's request before the next request goes out,
	// not when it answers later (TestAttackEarlySuccessLeavesTheBody).
	keep := !resp.Close && !out.Close && (out.Body == nil || out.Body == http.NoBody || resp.StatusCode < 300)
	resp.Body = &relayBody{body: resp.Body, pc: pc, pool: s.relay, stop: stop, keep: keep}
	return resp, pc, nil
}

// stale marks err errRelayStale when pc was reused and ended before any
// byte of an answer (got1xx false, and nothing read); a timeout of the
// header watch is never stale: sent again, the request would wait twice.
func (pc *relayConn) stale(err error, got1xx bool) error {
	if !pc.reused || got1xx || pc.lim.lr.N != pc.lim.max || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("%w: %w", errRelayStale, err)
}

// relayInformational writes an informational answer to the device, its
// hop-by-hop headers removed, as the reverse proxy and the parked Ping
// relay them.
func relayInformational(rec *recorder, info *http.Response) error {
	removeHopByHop(info.Header, nil)
	h := rec.Header()
	for k, v := range info.Header {
		h[k] = v
	}
	rec.WriteHeader(info.StatusCode)
	clear(h)
	return nil
}

// relayBody is the answer's body: read to its end and closed, it gives the
// connection back to the pool (keep: Exchange did not ask to close it);
// closed before, it closes the connection, as http.Transport does.
type relayBody struct {
	body io.ReadCloser
	pc   *relayConn
	pool *relayPool
	stop func() bool
	keep bool
	eof  bool
}

func (b *relayBody) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

// Close gives the connection back or closes it.
func (b *relayBody) Close() error {
	pc := b.pc
	if pc == nil {
		return nil
	}
	b.pc = nil
	err := b.body.Close()
	// stop false: the request's context ended and closed the connection.
	if b.stop() && b.eof && b.keep && err == nil {
		b.pool.put(pc)
		return nil
	}
	b.pool.discard(pc)
	return err
}

// relayAnswer writes Exchange's answer to the device: its header (after
// the inbound header rule) and its body, streamed through a pooled buffer,
// flushed after every write when the length is unknown (a chunked EAS
// stream), as the reverse proxy does. The answer's trailers are not
// relayed: EAS and EWS send none. A body broken off after the header
// aborts the device's connection (http.ErrAbortHandler), so a cut answer
// never looks complete.
func (s *Service) relayAnswer(rec *recorder, resp *http.Response) {
	h := rec.Header()
	for k, v := range resp.Header {
		h[k] = v
	}
	rec.WriteHeader(resp.StatusCode)
	buf := relayBuffers.Get()
	defer relayBuffers.Put(buf)
	var err error
	if resp.ContentLength < 0 {
		err = copyFlushing(rec, resp.Body, buf)
	} else {
		_, err = io.CopyBuffer(rec, resp.Body, buf)
	}
	if cerr := resp.Body.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		s.log.Debug("relay: answer broken off", "err", err)
		panic(http.ErrAbortHandler)
	}
}

// relayBuffers lends the relay its 32 KiB copy buffers.
var relayBuffers bufferPool

// copyFlushing copies src to rec, flushing after each write.
func copyFlushing(rec *recorder, src io.Reader, buf []byte) error {
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := rec.Write(buf[:n]); werr != nil {
				return werr
			}
			rec.Flush()
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
