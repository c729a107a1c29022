package edge

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/segmesh/segmesh/pkg/negotiate"
	"github.com/segmesh/segmesh/pkg/telemetry"
)

// requestState is one request's state, shared by the handler, the rewrite,
// the transport and the access log.
type requestState struct {
	eas         EASRequest
	upn         string
	entry       *ticketEntry
	identityHit bool
	ticketHit   bool
	retried     bool
	// cb is the channel binding the Negotiate header carries (kcd_binding.go)
	// and sent its authenticator's time (Exchange's AP-REP echoes it).
	cb      negotiate.Binding
	sent    time.Time
	failure *Failure
	// parked reports whether a parked Ping took the request over; it
	// writes the access-log line when answered (upstream_park.go).
	parked bool
	// negotiateErr is why the rewrite could not build the Negotiate
	// header; nil when it did (kcd_failclosed.go).
	negotiateErr error
}

type requestKey struct{}

// requestCtx is a request's context carrying its state and its response
// recorder: one allocation for the three instead of one each (a
// context.WithValue node, the state, the recorder) on every request.
// Value answers requestKey with the state and asks the parent otherwise, so
// context.WithCancel below it still finds the server's cancelCtx and starts
// no goroutine.
type requestCtx struct {
	context.Context
	x  requestState
	rw recorder
}

// Value returns the request's state for requestKey, else the parent's value.
func (c *requestCtx) Value(key any) any {
	if _, ok := key.(requestKey); ok {
		return &c.x
	}
	return c.Context.Value(key)
}

// upstreams is the Exchange side: the URLs in order of preference and the
// one transport to all of them.
type upstreams struct {
	urls      []*url.URL
	preferred atomic.Int32
	transport *http.Transport
	// dial connects without the header watch (parked Pings keep their own
	// read deadline).
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// watch enforces ResponseHeaderTimeout on the transport's connections
	// (upstream_headerwatch.go); nil when the timeout is 0 (none).
	watch *headerWatch
	// binders keep the channel binding per https upstream host (kcd_binding.go).
	binders map[string]*binder
	// replays carries the requests transport would replay after a read
	// error (idempotent methods), with http.Transport's own
	// ResponseHeaderTimeout; nil when watch is nil.
	replays *http.Transport
}

func (s *Service) newUpstreams() (*upstreams, error) {
	tc, err := s.upstreamTLS()
	if err != nil {
		return nil, err
	}
	// Resume TLS sessions with Exchange: a new upstream connection (after
	// an idle timeout, or a parked Ping's own) then costs both sides a
	// resumed handshake instead of a full one.
	tc.ClientSessionCache = tls.NewLRUClientSessionCache(256)
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: s.cfg.KeepAlive, Interval: s.cfg.KeepAlive}}
	u := &upstreams{urls: s.cfg.Upstreams, dial: d.DialContext, binders: newBinders(s.cfg.Upstreams)}
	dial := d.DialContext
	if s.cfg.ResponseHeaderTimeout > 0 {
		u.watch = newHeaderWatch(s.cfg.ResponseHeaderTimeout)
		dial = u.watch.dialer(d.DialContext)
	}
	u.transport = &http.Transport{
		DialContext:     dial,
		TLSClientConfig: tc,
		// HTTP/1.1 to Exchange: IIS answers Windows authentication over HTTP/1.1 only.
		ForceAttemptHTTP2:   false,
		TLSHandshakeTimeout: 10 * time.Second,
		// ResponseHeaderTimeout (above the longest EAS heartbeat, 3540 s: a
		// Ping waits this long) is enforced by u.watch, one sweeper instead
		// of a timer per request.
		ExpectContinueTimeout: time.Second,
		// The parked-Ping path applies the same bound (upstream_parklimits.go).
		MaxResponseHeaderBytes: s.cfg.MaxResponseHeaderBytes,
		MaxIdleConns:           1024,
		MaxIdleConnsPerHost:    512,
		IdleConnTimeout:        90 * time.Second,
		// Pass Content-Encoding through untouched.
		DisableCompression: true,
	}
	if u.watch != nil {
		// The watch ends a wait with a read error, which http.Transport
		// takes for a keep-alive race on a reused connection and answers by
		// sending an idempotent request again: a hung GET or OPTIONS waited
		// the timeout once more, and the replay reused its Negotiate
		// authenticator (Exchange refuses that as a replay, 401, and the
		// user's ticket was dropped). Such requests, rare in EAS, take a
		// transport of their own with http.Transport's timer.
		u.replays = u.transport.Clone()
		u.replays.DialContext = d.DialContext // not watched
		u.replays.ResponseHeaderTimeout = s.cfg.ResponseHeaderTimeout
		u.transport.DialTLSContext = u.watch.tlsDialer(d.DialContext, tc, u.transport.TLSHandshakeTimeout)
	}
	return u, nil
}

// transportFor returns the transport for req: replays for a request
// http.Transport would send again after a read error (Request.isReplayable).
func (u *upstreams) transportFor(req *http.Request) *http.Transport {
	if u.replays == nil || (req.Body != nil && req.Body != http.NoBody && req.GetBody == nil) {
		return u.transport
	}
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return u.replays
	}
	if _, ok := req.Header["Idempotency-Key"]; ok {
		return u.replays
	}
	if _, ok := req.Header["X-Idempotency-Key"]; ok {
		return u.replays
	}
	return u.transport
}

// newProxy builds the reverse proxy. FlushInterval 0: httputil flushes every
// write anyway for responses of unknown length (chunked EAS streams,
// ItemOperations multipart) and text/event-stream, and a response of known
// length goes out as the server's buffer fills and at its end. -1 would
// start a timer goroutine for every response: 9-13 % of the keep-alive CPU
// (perf, docs/benchmarks.md).
func (s *Service) newProxy() *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite:        s.rewrite,
		Transport:      pingTransport{s: s, inner: kcdTransport{s}},
		FlushInterval:  0,
		ErrorLog:       slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		ErrorHandler:   s.proxyError,
		ModifyResponse: s.modifyResponse,
		BufferPool:     &bufferPool{},
	}
}

// ServeHTTP handles one device request: path policy, certificate,
// identity, ticket, then the proxy.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := s.now()
	ctx, span := s.tracer.Start(r.Context(), "edge.Proxy", trace.WithSpanKind(trace.SpanKindServer))
	rc := &requestCtx{Context: ctx}
	rc.rw.ResponseWriter = w
	rw, x := &rc.rw, &rc.x
	defer s.finish(ctx, span, rw, r, x, start)

	if !s.cfg.allowedPath(r.URL.Path) {
		s.fail(rw, x, failureOf(errPathNotForwarded, 0))
		return
	}
	if r.URL.RawQuery != "" {
		x.eas, _ = ParseEASQuery(r.URL.RawQuery) // for logs only; Exchange judges the query
	}
	pr, _ := ctx.Value(peerKey{}).(*peer)
	verified := pr != nil && pr.verified
	if s.cfg.RequireClientCert && !verified {
		s.fail(rw, x, failureOf(errNoCertificate, 0))
		return
	}
	if verified && s.cfg.RequireClientCert {
		if r := s.recheckPeer(pr); r != nil {
			s.fail(rw, x, failureOf(r, 0))
			return
		}
	}
	if verified && s.cfg.Revocation && pr.revChecked.Load() != s.revocation.current() {
		gen, err := s.revocation.check(pr.leaf)
		if err != nil {
			r := refusal("revoked", pr.leaf, err)
			s.refused(r)
			s.fail(rw, x, failureOf(r, 0))
			return
		}
		pr.revChecked.Store(gen)
	}
	if s.cfg.KCD {
		if !verified {
			s.fail(rw, x, failureOf(errNoCertificate, 0))
			return
		}
		if err := s.authenticate(ctx, x, pr); err != nil {
			s.fail(rw, x, failureOf(err, s.cfg.RetryAfter))
			return
		}
		if err := s.makeReplayable(r); err != nil {
			s.fail(rw, x, failureOf(err, 0))
			return
		}
	}
	if len(s.upstreams.urls) == 0 {
		s.fail(rw, x, failureOf(errNoUpstream, s.cfg.RetryAfter))
		return
	}
	r = r.WithContext(rc)
	if s.answerPingAtOnce(rw, x) {
		return
	}
	if s.tryPark(w, r, rw, x, span, start) {
		return
	}
	s.proxyTracked(rw, r, x)
}

// authenticate finds the user and the ticket for the request.
func (s *Service) authenticate(ctx context.Context, x *requestState, pr *peer) error {
	id, hit, err := s.identity.lookup(ctx, pr.fingerprint, pr.leaf.Raw, pr.chainDER)
	s.metrics.identityLookup(hit)
	if err != nil {
		return err
	}
	x.upn, x.identityHit = id.UPN, hit
	e, hit, err := s.tickets.get(ctx, id.UPN, s.cfg.TargetSPN)
	s.metrics.ticketLookup(hit)
	if err != nil {
		return err
	}
	x.entry, x.ticketHit = e, hit
	return nil
}

// makeReplayable keeps a small request body in memory so the request can be
// sent again after a 401; larger or chunked bodies stream and are not retried.
func (s *Service) makeReplayable(r *http.Request) error {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		r.GetBody = func() (io.ReadCloser, error) { return http.NoBody, nil }
		return nil
	}
	if r.ContentLength < 0 || r.ContentLength > s.cfg.ReplayMaxBytes {
		return nil
	}
	buf := make([]byte, r.ContentLength)
	if _, err := io.ReadFull(r.Body, buf); err != nil {
		return fmt.Errorf("%w: %w", errReadBody, err)
	}
	rb := &replayBody{buf: buf}
	rb.r.Reset(buf)
	r.Body, r.GetBody = rb, rb.reopen
	return nil
}

// replayBody is a small request body kept in memory: the first attempt
// reads it, reopen gives a second attempt a fresh reader. One allocation
// besides the bytes, on the hot path of every small EAS command.
type replayBody struct {
	buf []byte
	r   bytes.Reader
}

func (b *replayBody) Read(p []byte) (int, error) { return b.r.Read(p) }

// Close does nothing: the bytes stay for a retry.
func (b *replayBody) Close() error { return nil }

func (b *replayBody) reopen() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(b.buf)), nil
}

// rewrite shapes the request for Exchange: upstream URL, X-Forwarded-*, and
// with KCD the device's Authorization replaced by a fresh Negotiate header.
// Hop-by-hop headers (Proxy-Authorization among them) are already gone.
func (s *Service) rewrite(pr *httputil.ProxyRequest) {
	pr.SetURL(s.upstreams.urls[int(s.upstreams.preferred.Load())])
	pr.SetXForwarded()
	pr.Out.Header.Del("Proxy-Authorization")
	x, _ := pr.In.Context().Value(requestKey{}).(*requestState)
	if !s.cfg.KCD || x == nil {
		return
	}
	pr.Out.Header.Del("Authorization")
	if x.entry != nil {
		if h, err := s.negotiateHeader(x, pr.Out.URL.Host); err == nil {
			pr.Out.Header["Authorization"] = []string{h}
		} else {
			// requireNegotiate refuses to send the request on.
			x.negotiateErr = err
			s.log.Error("build Negotiate header", telemetry.AttrUPN, x.upn, "err", err)
		}
	}
}

// kcdTransport sends to Exchange, fails over across the upstreams for
// replayable requests, and on a 401 to a Kerberos request invalidates the
// ticket and retries once with a new one.
type kcdTransport struct{ s *Service }

func (t kcdTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	s := t.s
	x, _ := req.Context().Value(requestKey{}).(*requestState)
	if err := s.requireNegotiate(req.Header, x); err != nil {
		return nil, err
	}
	resp, err := s.send(req)
	if err != nil || resp.StatusCode != http.StatusUnauthorized || x == nil || x.entry == nil || x.retried {
		return resp, err
	}
	ctx := req.Context()
	x.retried = true
	if !s.refreshAfter401(ctx, x) {
		return resp, nil
	}
	if !replayable(req) {
		s.log.Warn("Exchange refused the ticket (401); the body is not replayable, so no retry", telemetry.AttrUPN, x.upn)
		return resp, nil
	}
	drain(resp.Body)
	e, _, err := s.tickets.get(ctx, x.upn, s.cfg.TargetSPN)
	if err != nil {
		return nil, err
	}
	x.entry = e
	h, err := s.negotiateHeader(x, req.URL.Host)
	if err != nil {
		return nil, &TicketError{Err: err, Hint: "the ticket role returned a ticket the edge cannot use"}
	}
	again, err := clone(req)
	if err != nil {
		return nil, err
	}
	again.Header["Authorization"] = []string{h}
	s.log.Info("Exchange refused the ticket (401); retrying once with a new one", telemetry.AttrUPN, x.upn)
	return s.send(again)
}

// send tries the preferred upstream, then the others when the connection
// could not be made and the request can be sent again.
func (s *Service) send(req *http.Request) (*http.Response, error) {
	u := s.upstreams
	resp, err := u.transportFor(req).RoundTrip(s.bound(req))
	if err == nil || len(u.urls) < 2 || !isDialError(err) || !replayable(req) {
		return resp, err
	}
	first := int(u.preferred.Load())
	for i := 1; i < len(u.urls); i++ {
		n := (first + i) % len(u.urls)
		again, cerr := clone(req)
		if cerr != nil {
			return nil, err
		}
		again.URL.Scheme, again.URL.Host, again.Host = u.urls[n].Scheme, u.urls[n].Host, ""
		s.log.Warn("Exchange upstream unreachable; trying the next", "failed", u.urls[first].Host, "next", u.urls[n].Host, "err", err)
		if resp, err = u.transportFor(again).RoundTrip(s.bound(again)); err == nil || !isDialError(err) {
			u.preferred.Store(int32(n))
			return resp, err
		}
	}
	return resp, err
}

func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func replayable(req *http.Request) bool {
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

// clone copies req with a fresh body for a second attempt.
func clone(req *http.Request) (*http.Request, error) {
	again := req.Clone(req.Context())
	if req.Body != nil && req.Body != http.NoBody {
		b, err := req.GetBody()
		if err != nil {
			return nil, fmt.Errorf("replay request body: %w", err)
		}
		again.Body = b
	}
	return again, nil
}

// drain reads a little of a discarded body so the connection can be reused.
func drain(b io.ReadCloser) {
	_, _ = io.CopyN(io.Discard, b, 64<<10)
	_ = b.Close()
}

// modifyResponse passes Exchange's answer through untouched, except that
// Server (it names Exchange's software) is dropped, and with KCD so are
// Exchange's authentication headers: WWW-Authenticate on any status (a
// Negotiate challenge on a 401 the device cannot answer, a Basic one would
// make it ask its user for a password the gateway does not use, and
// Exchange's mutual-authentication reply on a 200 may start a Kerberos
// exchange of the device's own) and Persistent-Auth.
func (s *Service) modifyResponse(resp *http.Response) error {
	resp.Header.Del("Server")
	if s.cfg.KCD {
		if err := s.verifyMutual(resp); err != nil {
			return err
		}
		resp.Header.Del("WWW-Authenticate")
		resp.Header.Del("Persistent-Auth")
	}
	return nil
}

// verifyMutual checks Exchange's mutual-authentication reply, when it sends
// one (WWW-Authenticate: Negotiate <AP-REP> on an answer that is not a
// 401): it must open with the ticket's session key and echo the
// authenticator's time. A mismatch means something other than the Exchange
// the ticket is for answered; the response is not delivered.
func (s *Service) verifyMutual(resp *http.Response) error {
	if resp.StatusCode == http.StatusUnauthorized || resp.Request == nil {
		return nil
	}
	x, _ := resp.Request.Context().Value(requestKey{}).(*requestState)
	if x == nil || x.entry == nil {
		return nil
	}
	for _, v := range resp.Header.Values("WWW-Authenticate") {
		if len(v) <= len(negotiate.HeaderPrefix) || !strings.HasPrefix(v, negotiate.HeaderPrefix) {
			continue
		}
		if err := x.entry.neg.verifyReply(v, x.sent); err != nil {
			drain(resp.Body)
			return &Failure{Status: http.StatusBadGateway, Reason: "Exchange's mutual-authentication reply does not match the ticket; the response was not delivered",
				Fix: "something other than the Exchange server the ticket is for answered: check what sits between the gateway and Exchange (segmesh.edge.exchangeUrls)", Err: err}
		}
	}
	return nil
}

// proxyError maps an upstream or ticket failure to the device's status.
func (s *Service) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	if s.answerDrainedPing(w, r, err) {
		return
	}
	x, _ := r.Context().Value(requestKey{}).(*requestState)
	f := failureOf(err, s.cfg.RetryAfter)
	if x != nil {
		x.failure = f
	}
	writeFailure(w, f)
}

func (s *Service) fail(w http.ResponseWriter, x *requestState, f *Failure) {
	x.failure = f
	writeFailure(w, f)
}

// finish writes the access-log line, the metrics and the span of a request.
// The line never holds Authorization or any token.
func (s *Service) finish(ctx context.Context, span trace.Span, rw *recorder, r *http.Request, x *requestState, start time.Time) {
	if x.parked {
		return
	}
	end := s.now()
	d := end.Sub(start)
	status := rw.status
	switch {
	case x.failure != nil && (status == 0 || x.failure.Status == 499):
		status = x.failure.Status
	case status == 0 && r.Context().Err() != nil:
		status = 499
	case status == 0:
		status = http.StatusOK
	}
	s.metrics.request(ctx, status, d)
	// Attributes only for a sampled span: building them costs an
	// allocation per request that an unsampled one throws away.
	if span.IsRecording() {
		span.SetAttributes(attribute.Int("http.response.status_code", status), attribute.String(telemetry.AttrUPN, x.upn),
			attribute.String(telemetry.AttrDeviceID, x.eas.DeviceID), attribute.String(telemetry.AttrCmd, x.eas.Cmd))
		if status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(status))
		}
	}
	span.End()
	level := slog.LevelInfo
	if x.failure != nil && x.failure.Status != http.StatusNotFound {
		level = slog.LevelWarn
		if x.failure.Status != 499 {
			s.refusals.add(refusalRecord{Time: end, Reason: x.failure.Reason, UPN: x.upn, Status: strconv.Itoa(status)})
		}
	}
	h := s.log.Handler()
	if !h.Enabled(ctx, level) {
		return
	}
	// The record is built here rather than with Logger.LogAttrs, which
	// looks up its caller (runtime.Callers) for every line although no
	// handler prints the source: about a quarter of the line's cost.
	rec := slog.NewRecord(end, level, "request", 0)
	rec.AddAttrs(
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.Int(telemetry.AttrStatus, status),
		slog.Int64("bytes", rw.bytes),
		slog.Duration("duration", d),
		slog.String(telemetry.AttrUPN, x.upn),
		slog.String(telemetry.AttrDeviceID, x.eas.DeviceID),
		slog.String("device_type", x.eas.DeviceType),
		slog.String(telemetry.AttrCmd, x.eas.Cmd),
		slog.Bool("ticket_cache_hit", x.ticketHit),
		slog.String("remote", r.RemoteAddr),
	)
	if x.retried {
		rec.AddAttrs(slog.Bool("retried_401", true))
	}
	if x.failure != nil {
		rec.AddAttrs(slog.Any("failure", x.failure))
	}
	_ = h.Handle(ctx, rec)
}

// recorder notes the status and size of the response for the access log.
// It keeps http.ResponseController working through Unwrap.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *recorder) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Flush flushes the underlying writer. The proxy flushes after every write
// of a streamed response, so the common case avoids building a
// ResponseController.
func (w *recorder) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
		return
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap returns the underlying writer.
func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// bufferPool lends the proxy its 32 KiB copy buffers.
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, 32<<10)
}

func (b *bufferPool) Put(buf []byte) { b.p.Put(&buf) }
