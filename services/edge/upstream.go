package edge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// The upstream: Exchange's side of the edge. One http.Transport (with the
// header watch, upstream_headerwatch.go) carries the keep-alive requests of
// the reverse proxy; a parked Ping dials a connection of its own
// (upstream_park_send.go). Both go through failover for the choice of
// Exchange server and through the request policy (policy.go) for what is
// sent and what comes back.

// upstreams is the Exchange side: the URLs in order of preference and the
// one transport to all of them.
type upstreams struct {
	// route is the URLs in force; a reloaded configuration swaps it
	// (ApplyConfig) while the transports, and so every open connection,
	// stay: a request, a held Ping, keeps the URL it was sent to.
	route     atomic.Pointer[route]
	transport *http.Transport
	// dial connects without the header watch (parked Pings keep their own
	// read deadline).
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// watch enforces ResponseHeaderTimeout on the transport's connections
	// (upstream_headerwatch.go); nil when the timeout is 0 (none).
	watch *headerWatch
	// sessions are the TLS sessions with the HTTPS upstreams, per
	// host:port (upstream_sessions.go).
	sessions *upstreamSessions
	// replays carries the requests transport would replay after a read
	// error (idempotent methods), with http.Transport's own
	// ResponseHeaderTimeout; nil when watch is nil.
	replays *http.Transport
	// keep is the keep rule after a request with a body (upstream_keep.go).
	keep keepRule
}

// route is the Exchange URLs in order of preference, the one that answered
// last, and the channel bindings per https host.
type route struct {
	urls      []*url.URL
	preferred atomic.Int32
	// binders keep the channel binding per https upstream host
	// (kcd_binding.go); read-only once the route is stored.
	binders map[string]*binder
}

// newRoute returns the route to urls, keeping old's binders: a host still
// listed keeps what it learned, and a host no longer listed keeps its
// binder for the requests still on their way there.
func newRoute(urls []*url.URL, old *route) *route {
	r := &route{urls: urls, binders: newBinders(urls)}
	if old != nil {
		for h, b := range old.binders {
			r.binders[h] = b
		}
	}
	return r
}

func (s *Service) newUpstreams() (*upstreams, error) {
	tc, err := ExchangeTLS(s.cfg.ExchangeCAFile)
	if err != nil {
		return nil, err
	}
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: s.cfg.KeepAlive, Interval: s.cfg.KeepAlive}}
	// TLS sessions with Exchange are resumed, one cache per host:port
	// (upstream_sessions.go): every HTTPS dial goes through u.sessions.
	u := &upstreams{dial: d.DialContext, sessions: &upstreamSessions{}}
	u.route.Store(newRoute(s.cfg.Upstreams, nil))
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
		u.replays.DialTLSContext = u.sessions.tlsDialer(d.DialContext, tc, u.transport.TLSHandshakeTimeout)
		u.replays.ResponseHeaderTimeout = s.cfg.ResponseHeaderTimeout
		u.transport.DialTLSContext = u.watch.tlsDialer(d.DialContext, u.sessions, tc, u.transport.TLSHandshakeTimeout)
	} else {
		u.transport.DialTLSContext = u.sessions.tlsDialer(d.DialContext, tc, u.transport.TLSHandshakeTimeout)
	}
	return u, nil
}

// transportFor returns the transport for req: replays for a request
// http.Transport would send again after a read error (Request.isReplayable).
func (u *upstreams) transportFor(req *http.Request) *http.Transport {
	if u.replays == nil || (req.Body != nil && req.Body != http.NoBody && req.GetBody == nil) {
		return u.transport
	}
	if idempotent(req) {
		return u.replays
	}
	return u.transport
}

// idempotent reports whether req may be sent again after Exchange may have
// carried it out (it read the request, then the connection ended without
// an answer), as http.Transport decides (Request.isReplayable): GET, HEAD,
// OPTIONS, TRACE, or a request with an Idempotency-Key. A POST (every EAS
// command, a SendMail among them) is not (RFC 9110 section 9.2.2).
func idempotent(req *http.Request) bool {
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	_, key := req.Header["Idempotency-Key"]
	_, xkey := req.Header["X-Idempotency-Key"]
	return key || xkey
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

// kcdTransport is the reverse proxy's transport: it sends to Exchange with
// failover, and applies the 401 rule (policy.go) to the answer.
type kcdTransport struct{ s *Service }

// RoundTrip sends req, and once more with a new ticket when the 401 rule
// says so.
func (t kcdTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	s := t.s
	state, _ := req.Context().Value(requestKey{}).(*requestState)
	if err := s.requireNegotiate(req.Header, state); err != nil {
		return nil, err
	}
	resp, err := s.send(req)
	if err != nil {
		return resp, err
	}
	again, err := s.renewAfter401(req.Context(), state, resp, replayable(req))
	if !again || err != nil {
		return resp, err
	}
	retry, err := clone(req)
	if err != nil {
		return nil, err
	}
	s.authorize(retry.Header, state, req.URL.Host)
	if err := s.requireNegotiate(retry.Header, state); err != nil {
		return nil, err
	}
	return s.send(retry)
}

// send sends req to the upstream failover picks; on another upstream than
// the one rewrite addressed, a copy of req with that upstream's URL.
func (s *Service) send(req *http.Request) (*http.Response, error) {
	var resp *http.Response
	err := s.failover(replayable(req), func(u *url.URL, first bool) error {
		out := req
		if !first {
			again, err := clone(req)
			if err != nil {
				return err
			}
			again.URL.Scheme, again.URL.Host, again.Host = u.Scheme, u.Host, ""
			out = again
		}
		var err error
		var turn keepTurn
		resp, err = s.upstreams.transportFor(out).RoundTrip(s.traced(out, &turn))
		resp = s.upstreams.keep.settle(&turn, resp, err)
		return err
	})
	return resp, err
}

// failover is the failover rule of both paths: attempt goes to the
// preferred upstream first (first true); when it fails with a dial error
// (nothing was sent) and the request can be sent again, to the others in
// order. The first upstream that could be reached becomes the preferred one.
func (s *Service) failover(again bool, attempt func(u *url.URL, first bool) error) error {
	u := s.upstreams.route.Load()
	first := int(u.preferred.Load())
	err := attempt(u.urls[first], true)
	if err == nil || !again || !isDialError(err) {
		return err
	}
	for i := 1; i < len(u.urls); i++ {
		n := (first + i) % len(u.urls)
		s.log.Warn("Exchange upstream unreachable; trying the next", "failed", u.urls[first].Host, "next", u.urls[n].Host, "err", err)
		if err = attempt(u.urls[n], false); err == nil || !isDialError(err) {
			u.preferred.Store(int32(n))
			return err
		}
	}
	return err
}

// isDialError reports whether err is a failure to connect: nothing was sent.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// replayable reports whether req's body can be sent again.
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

// bufferPool lends the proxy its 32 KiB copy buffers.
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, 32<<10)
}

func (b *bufferPool) Put(buf []byte) { b.p.Put(&buf) }
