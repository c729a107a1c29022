package edge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/segmesh/segmesh/pkg/negotiate"
	"github.com/segmesh/segmesh/pkg/telemetry"
)

// The request policy: what the edge does with every device request, written
// once and used by both ways a request reaches Exchange (the reverse proxy
// and a parked Ping, upstream_park.go):
//
//   - re-check: recheck, the device certificate against the current trust,
//     validity and revocation (at the request, and for a parked Ping again
//     before its answer is delivered);
//   - authenticate: authenticate, the user (identity cache) and the ticket
//     (ticket cache), kcd_*.go;
//   - header rules: rewrite (outbound: hop-by-hop, X-Forwarded-*, the
//     device's credentials out, the edge's Negotiate header in; authorize)
//     and modifyResponse (inbound: hop-by-hop, Server and Exchange's
//     authentication headers out, the mutual-authentication reply checked);
//   - 401: renewAfter401, a new ticket and one more try;
//   - failover: Service.failover (upstream.go);
//   - error mapping: fail and failureOf (errors.go);
//   - access line: finish (policy_access.go).

// requestState is one request's state, shared by the handler, the rewrite,
// the transport, a parked Ping and the access line.
type requestState struct {
	eas EASRequest
	upn string
	// spn is the Exchange SPN the ticket is for: the one in force when the
	// request was authenticated (a reload may change it meanwhile).
	spn    string
	ticket *ticketEntry
	// identityHit and ticketHit say whether the user and the ticket came
	// from the caches.
	identityHit bool
	ticketHit   bool
	// retried reports whether the 401 rule already spent its one retry.
	retried bool
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
	// wait is how an EAS Sync may be held at Exchange, which the drain
	// answers (eas_wait.go, upstream_drain.go).
	wait syncWait
}

type requestKey struct{}

// serverSpan is the request span's kind, made once: trace.WithSpanKind
// allocates.
var serverSpan = trace.WithSpanKind(trace.SpanKindServer)

// noSpan is the request's span when tracing is off: a span that records
// nothing, as the no-op tracer's Start would return, without the context
// node Start adds to every request's context to carry it.
var noSpan = trace.SpanFromContext(context.Background())

// requestCtx is a request's context carrying its state and its response
// recorder: one allocation for the three instead of one each (a
// context.WithValue node, the state, the recorder) on every request.
// Value answers requestKey with the state and asks the parent otherwise, so
// context.WithCancel below it still finds the server's cancelCtx and starts
// no goroutine.
type requestCtx struct {
	context.Context
	state requestState
	rec   recorder
}

// Value returns the request's state for requestKey, else the parent's value.
func (c *requestCtx) Value(key any) any {
	if _, ok := key.(requestKey); ok {
		return &c.state
	}
	return c.Context.Value(key)
}

// ServeHTTP handles one device request: path, certificate re-check, user
// and ticket, then the way to Exchange (answered at once while draining,
// parked, or the reverse proxy).
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := s.now()
	s.fresh.served(r.Context()) // door_drain.go
	ctx, span := r.Context(), noSpan
	if s.tracing {
		ctx, span = s.tracer.Start(ctx, "edge.Proxy", serverSpan)
	}
	reqCtx := &requestCtx{Context: ctx}
	reqCtx.rec.ResponseWriter = w
	rec, state := &reqCtx.rec, &reqCtx.state
	defer s.finish(ctx, span, rec, r, state, start)

	if !s.cfg.allowedPath(r.URL.Path) {
		s.fail(rec, state, errPathNotForwarded)
		return
	}
	if r.URL.RawQuery != "" {
		state.eas, _ = ParseEASQuery(r.URL.RawQuery) // for logs only; Exchange judges the query
	}
	devCert, _ := ctx.Value(peerKey{}).(*peer)
	verified := devCert != nil && devCert.verified
	if (s.cfg.RequireClientCert || s.cfg.KCD) && !verified {
		s.fail(rec, state, errNoCertificate)
		return
	}
	if refused := s.recheck(devCert); refused != nil {
		s.fail(rec, state, refused)
		return
	}
	if s.cfg.KCD {
		if err := s.authenticate(ctx, state, devCert); err != nil {
			s.fail(rec, state, err)
			return
		}
		if err := s.makeReplayable(r); err != nil {
			s.fail(rec, state, err)
			return
		}
	}
	if len(s.upstreams.route.Load().urls) == 0 {
		s.fail(rec, state, errNoUpstream)
		return
	}
	r = r.WithContext(reqCtx)
	if s.answerHeldAtOnce(rec, r, state) {
		return
	}
	if s.tryPark(w, r, rec, state, span, start) {
		return
	}
	if s.relayable(r, state) {
		s.relayServe(rec, r, state) // engine_relay.go
		return
	}
	s.proxyTracked(rec, r, state)
}

// recheck is the re-check rule: a connection that stays open (keep-alive,
// HTTP/2, a Ping held for an hour) meets at every request what a new
// handshake would — the certificate chain still valid and trusted
// (recheckPeer, with Require Client Certificate) and not revoked in a
// revocation snapshot newer than the one it was last checked against. It
// returns the refusal, which sticks to the connection; nil for a device
// without a verified certificate (whether one is required is the
// caller's rule).
func (s *Service) recheck(devCert *peer) *CertificateRefusal {
	if devCert == nil || !devCert.verified {
		return nil
	}
	if s.cfg.RequireClientCert {
		if refused := s.recheckPeer(devCert); refused != nil {
			return refused
		}
	}
	if !s.cfg.Revocation || devCert.revChecked.Load() == s.revocation.current() {
		return nil
	}
	gen, refused := s.checkRevocation(devCert.leaf)
	if refused != nil {
		return refused
	}
	devCert.revChecked.Store(gen)
	return nil
}

// authenticate is the authenticate rule: the user the certificate maps to
// (identity cache, kcd_identity.go) and a ticket for the Exchange SPN
// (ticket cache, kcd_tickets.go).
func (s *Service) authenticate(ctx context.Context, state *requestState, devCert *peer) error {
	id, hit, err := s.identity.lookup(ctx, devCert.fingerprint, devCert.leaf.Raw, devCert.chainDER)
	s.metrics.identityLookup(hit)
	if err != nil {
		return err
	}
	state.upn, state.identityHit, state.spn = id.UPN, hit, s.targetSPN()
	ticket, hit, err := s.tickets.get(ctx, id.UPN, state.spn)
	s.metrics.ticketLookup(hit)
	if err != nil {
		return err
	}
	state.ticket, state.ticketHit = ticket, hit
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
	body := &replayBody{buf: buf}
	body.r.Reset(buf)
	r.Body, r.GetBody = io.NopCloser(&body.r), body.reopen
	return nil
}

// replayBody is a small request body kept in memory: the first attempt
// reads r, reopen gives a second attempt a fresh reader. Each attempt's
// body is an io.NopCloser around a *bytes.Reader, which net/http knows is
// in memory: it writes the request's header and such a body in one write
// (one system call and TCP segment); for a body of any other type it
// flushes the header on its own first (TestReplayableBodyGoesOutInOneWrite).
type replayBody struct {
	buf []byte
	r   bytes.Reader
}

func (b *replayBody) reopen() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(b.buf)), nil
}

// rewrite is the outbound header rule, the reverse proxy's Rewrite and
// the parked Ping's too: the upstream's URL; no hop-by-hop header (RFC 9110
// section 7.6.1; the proxy removed them already, a parked Ping has not) but
// "Te: trailers"; no protocol upgrade; no request trailer; X-Forwarded-* from the device's connection only; the
// device's Proxy-Authorization never, and with KCD its Authorization
// replaced by the edge's Negotiate header (authorize).
func (s *Service) rewrite(proxyReq *httputil.ProxyRequest) {
	out := proxyReq.Out
	removeHopByHop(out.Header, proxyReq.In.Header)
	// The device's trailer section is a second header section the rules
	// above do not read: EAS and EWS send none, so none goes upstream.
	out.Trailer = nil
	delete(out.Header, "Forwarded")
	delete(out.Header, "X-Forwarded-For")
	delete(out.Header, "X-Forwarded-Host")
	delete(out.Header, "X-Forwarded-Proto")
	if _, ok := out.Header["User-Agent"]; !ok {
		out.Header.Set("User-Agent", "") // Go's client would send its own
	}
	rt := s.upstreams.route.Load()
	proxyReq.SetURL(rt.urls[int(rt.preferred.Load())])
	setXForwarded(out.Header, proxyReq.In)
	if !s.cfg.KCD {
		// The device's own Authorization goes to Exchange: a connection
		// it authenticates is never shared (kcd_failclosed.go).
		out.Close = out.Close || connectionAuth(out.Header["Authorization"])
		return
	}
	state, _ := proxyReq.In.Context().Value(requestKey{}).(*requestState)
	if state == nil {
		return
	}
	s.authorize(out.Header, state, out.URL.Host)
}

// setXForwarded sets X-Forwarded-For, X-Forwarded-Host and
// X-Forwarded-Proto from the device's request in, as
// httputil.ProxyRequest.SetXForwarded does on a header the rewrite removed
// them from (TestSetXForwarded compares the two), with the three values in
// one allocation instead of one each.
func setXForwarded(h http.Header, in *http.Request) {
	v := make([]string, 3)
	if ip, _, err := net.SplitHostPort(in.RemoteAddr); err == nil {
		v[0] = ip
		h["X-Forwarded-For"] = v[0:1:1]
	} else {
		delete(h, "X-Forwarded-For")
	}
	v[1] = in.Host
	h["X-Forwarded-Host"] = v[1:2:2]
	v[2] = "http"
	if in.TLS != nil {
		v[2] = "https"
	}
	h["X-Forwarded-Proto"] = v[2:3:3]
}

// authorize puts state's Negotiate header for upstream host in h, in
// place of whatever Authorization the device sent; when none can be built
// it records why, and requireNegotiate (kcd_failclosed.go) keeps the
// request from Exchange.
func (s *Service) authorize(h http.Header, state *requestState, host string) {
	delete(h, "Authorization")
	if state.ticket == nil {
		return
	}
	v, err := s.negotiateHeader(state, host)
	if err != nil {
		state.negotiateErr = err
		s.log.Error("build Negotiate header", telemetry.AttrUPN, state.upn, "err", err)
		return
	}
	h["Authorization"] = []string{v}
}

// errSwitchedProtocols refuses a 101 Switching Protocols from the upstream,
// on the reverse proxy and a parked Ping alike: no request the edge sends
// asks for an upgrade (removeHopByHop), so the device gets 502.
var errSwitchedProtocols = errors.New("edge: Exchange switched protocols, but segmesh asks for no upgrade")

// hopHeaders are removed in both directions (RFC 9110 section 7.6.1), as
// httputil.ReverseProxy does. Canonical keys: removed with delete.
var hopHeaders = [...]string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// removeHopByHop removes the hop-by-hop headers from h and those its
// Connection header names. With in, the request h copies, "Te: trailers"
// stays when in asked for it. A protocol upgrade never stays, although
// httputil.ReverseProxy would pass one: EAS, EWS and Autodiscover never
// upgrade, and a 101 would leave the device a raw tunnel on a connection
// Exchange authenticated as the user, past the per-request revocation
// re-check and the path rule (TestAttackUpgradeTunnel). Without the
// Upgrade header the request is served as plain HTTP/1.1.
func removeHopByHop(h, in http.Header) {
	for _, f := range h["Connection"] {
		for sf := range strings.SplitSeq(f, ",") {
			if sf = strings.TrimSpace(sf); sf != "" {
				h.Del(sf)
			}
		}
	}
	for _, f := range hopHeaders {
		delete(h, f)
	}
	if in == nil {
		return
	}
	if hasToken(in["Te"], "trailers") {
		h["Te"] = []string{"trailers"}
	}
}

// hasToken reports whether the comma-separated header values vs hold
// token (ASCII case-insensitive; parameters after ";" ignored).
func hasToken(vs []string, token string) bool {
	for _, v := range vs {
		for t := range strings.SplitSeq(v, ",") {
			if t, _, _ = strings.Cut(t, ";"); strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// renewAfter401 is the 401 rule, for a response to state's request: a 401
// to a Kerberos request that has not been retried costs the ticket (when
// refreshAfter401 allows, kcd_unauthorized.go) and, when the request can be
// sent again, fetches a new one into state and returns true: the caller
// sends the request once more. Otherwise the response goes to the device
// as it is (without WWW-Authenticate, modifyResponse).
func (s *Service) renewAfter401(ctx context.Context, state *requestState, resp *http.Response, bodyKept bool) (bool, error) {
	if resp.StatusCode != http.StatusUnauthorized || state == nil || state.ticket == nil || state.retried {
		return false, nil
	}
	state.retried = true
	if !s.refreshAfter401(ctx, state) {
		return false, nil
	}
	if !bodyKept {
		s.log.Warn("Exchange refused the ticket (401); the body is not replayable, so no retry", telemetry.AttrUPN, state.upn)
		return false, nil
	}
	drain(resp.Body)
	ticket, _, err := s.tickets.get(ctx, state.upn, state.spn)
	if err != nil {
		return false, err
	}
	state.ticket = ticket
	s.log.Info("Exchange refused the ticket (401); retrying once with a new one", telemetry.AttrUPN, state.upn)
	return true, nil
}

// modifyResponse is the inbound header rule, for the reverse proxy and a
// parked Ping alike: Exchange's answer passes untouched except that
// hop-by-hop headers go (the proxy removed them already), so does Server
// (it names Exchange's software), and with KCD so do Exchange's
// authentication headers: WWW-Authenticate on any status (a Negotiate
// challenge on a 401 the device cannot answer, a Basic one would make it
// ask its user for a password the gateway does not use, and Exchange's
// mutual-authentication reply on a 200 may start a Kerberos exchange of
// the device's own) and Persistent-Auth.
func (s *Service) modifyResponse(resp *http.Response) error {
	if resp.StatusCode == http.StatusSwitchingProtocols {
		// No request asks for an upgrade (removeHopByHop): a 101 is
		// Exchange, or something in its place, opening a tunnel unasked.
		return errSwitchedProtocols
	}
	if refused := s.recheckHeld(resp.Request); refused != nil {
		return refused
	}
	removeHopByHop(resp.Header, nil)
	delete(resp.Header, "Server")
	if s.cfg.KCD {
		if err := s.verifyMutual(resp); err != nil {
			return err
		}
		delete(resp.Header, "Www-Authenticate")
		delete(resp.Header, "Persistent-Auth")
	}
	return nil
}

// informationalHeader is the inbound header rule for an informational
// answer (1xx) on every path: hop-by-hop headers, Server and Exchange's
// authentication headers (WWW-Authenticate, Persistent-Auth) go, as
// modifyResponse removes them from the final answer; a 1xx has no use for
// an authentication header, so they go with KCD off too
// (TestAttackInformationalCarriesAuthHeaders).
func informationalHeader(h http.Header) {
	removeHopByHop(h, nil)
	delete(h, "Server")
	delete(h, "Www-Authenticate")
	delete(h, "Persistent-Auth")
}

// recheckHeld applies the re-check rule (recheck) to every answer before it
// is delivered, as the parked path does (parkedPing.recheck): a certificate
// revoked while the request was at Exchange gets the refusal, not
// Exchange's answer or the drain's Status 1. Not only Pings are held: an
// EAS Sync with a Wait or HeartbeatInterval waits at Exchange up to 59
// minutes, an EWS streaming subscription up to 30 (TestAttackDrainRevokedMidHold,
// TestAttackHeldSyncRevokedMidHold). It costs a generation comparison
// unless the revocation data changed since the device was last checked.
func (s *Service) recheckHeld(r *http.Request) *CertificateRefusal {
	if r == nil {
		return nil
	}
	devCert, _ := r.Context().Value(peerKey{}).(*peer)
	return s.recheck(devCert)
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
	state, _ := resp.Request.Context().Value(requestKey{}).(*requestState)
	if state == nil || state.ticket == nil {
		return nil
	}
	for _, v := range resp.Header.Values("WWW-Authenticate") {
		if len(v) <= len(negotiate.HeaderPrefix) || !strings.HasPrefix(v, negotiate.HeaderPrefix) {
			continue
		}
		if err := state.ticket.neg.verifyReply(v, state.sent); err != nil {
			drain(resp.Body)
			return &Failure{Status: http.StatusBadGateway, Reason: "Exchange's mutual-authentication reply does not match the ticket; the response was not delivered",
				Fix: "something other than the Exchange server the ticket is for answered: check what sits between the gateway and Exchange (segmesh.edge.exchangeUrls)", Err: err}
		}
	}
	return nil
}

// proxyError is the reverse proxy's ErrorHandler: the error mapping rule
// (fail) for a failure on the way to or from Exchange.
func (s *Service) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	if s.answerDrainedPing(w, r, err) {
		return
	}
	state, _ := r.Context().Value(requestKey{}).(*requestState)
	if state == nil {
		writeFailure(w, failureOf(err, s.cfg.RetryAfter))
		return
	}
	s.fail(w, state, err)
}

// fail is the error mapping rule: err becomes the request's failure (its
// status, Retry-After for a 503, the cause and fix for the access line)
// and the device gets the plain status.
func (s *Service) fail(w http.ResponseWriter, state *requestState, err error) {
	state.failure = failureOf(err, s.cfg.RetryAfter)
	writeFailure(w, state.failure)
}
