package edge

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// send dials the preferred upstream (then the others on a dial error) and
// writes the request with a fresh Negotiate header. The response deadline
// is set on the connection.
func (p *parkedPing) send(ctx context.Context) error {
	s := p.s
	u := s.upstreams
	first := int(u.preferred.Load())
	var err error
	for i := range u.urls {
		n := (first + i) % len(u.urls)
		var c net.Conn
		if c, err = s.dialUpstream(ctx, u.urls[n]); err != nil {
			if !isDialError(err) {
				return err
			}
			continue
		}
		if i > 0 {
			u.preferred.Store(int32(n))
		}
		if err = p.write(c, u.urls[n]); err != nil {
			_ = c.Close()
			return err
		}
		raw := c
		if tc, ok := c.(*tls.Conn); ok {
			raw = tc.NetConn()
		}
		sc, ok := raw.(syscall.Conn)
		if !ok {
			_ = c.Close()
			return errors.New("edge: park Ping: upstream connection has no file descriptor")
		}
		rc, rerr := sc.SyscallConn()
		if rerr != nil {
			_ = c.Close()
			return fmt.Errorf("edge: park Ping: %w", rerr)
		}
		// Real time, not s.now: the kernel's clock runs the deadline. A
		// ResponseHeaderTimeout of 0 means none, as on the proxy path (the
		// zero deadline clears it).
		var deadline time.Time
		if s.cfg.ResponseHeaderTimeout > 0 {
			deadline = time.Now().Add(s.cfg.ResponseHeaderTimeout)
		}
		_ = c.SetReadDeadline(deadline)
		p.mu.Lock()
		old := p.up
		p.up, p.upRaw, p.deadline = c, rc, deadline
		closed := p.stopped.Load() || p.devGone.Load() || p.drained.Load()
		p.mu.Unlock()
		if old != nil {
			_ = old.Close()
		}
		if closed {
			_ = c.Close()
		}
		return nil
	}
	return err
}

// dialUpstream connects to u with the transport's dialer and TLS settings.
func (s *Service) dialUpstream(ctx context.Context, u *url.URL) (net.Conn, error) {
	t := s.upstreams.transport
	host := u.Host
	if u.Port() == "" {
		if u.Scheme == "https" {
			host = net.JoinHostPort(u.Hostname(), "443")
		} else {
			host = net.JoinHostPort(u.Hostname(), "80")
		}
	}
	c, err := s.upstreams.dial(ctx, "tcp", host)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "https" {
		return c, nil
	}
	cfg := t.TLSClientConfig.Clone()
	if cfg.ServerName == "" {
		cfg.ServerName = u.Hostname()
	}
	cfg.NextProtos = []string{"http/1.1"}
	if cfg.ClientSessionCache == nil {
		// Every parked Ping dials: resume instead of a full handshake.
		cfg.ClientSessionCache = s.parking.sessions
	}
	tc := tls.Client(c, cfg)
	hctx, cancel := context.WithTimeout(ctx, t.TLSHandshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("edge: TLS handshake with %s: %w", u.Host, err)
	}
	return tc, nil
}

// write sends the device's request to u on c as the reverse proxy would:
// hop-by-hop headers removed, then the edge's rewrite (URL, X-Forwarded-*,
// a fresh Negotiate header).
func (p *parkedPing) write(c net.Conn, u *url.URL) error {
	in := p.req
	out := in.Clone(p.ctx)
	out.RequestURI, out.Close = "", false
	if in.ContentLength == 0 || in.Body == nil || in.Body == http.NoBody {
		out.Body = nil
	} else {
		b, err := in.GetBody()
		if err != nil {
			return fmt.Errorf("replay request body: %w", err)
		}
		out.Body = b
	}
	removeHopByHop(out.Header)
	for _, h := range []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"} {
		out.Header.Del(h)
	}
	p.s.rewrite(&httputil.ProxyRequest{In: in, Out: out})
	p.s.rebind(out.Header, p.x, u.Host, c)
	if err := p.s.requireNegotiate(out.Header, p.x); err != nil {
		return err
	}
	out.URL.Scheme, out.URL.Host = u.Scheme, u.Host
	if _, ok := out.Header["User-Agent"]; !ok {
		out.Header.Set("User-Agent", "")
	}
	bw := bufio.NewWriterSize(c, 2048)
	if err := out.Write(bw); err != nil {
		return fmt.Errorf("edge: send Ping upstream: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("edge: send Ping upstream: %w", err)
	}
	return nil
}

// hopHeaders are removed in both directions (RFC 9110 section 7.6.1), as
// httputil.ReverseProxy does.
var hopHeaders = [...]string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

func removeHopByHop(h http.Header) {
	for _, f := range h["Connection"] {
		for sf := range strings.SplitSeq(f, ",") {
			if sf = strings.TrimSpace(sf); sf != "" {
				h.Del(sf)
			}
		}
	}
	for _, f := range hopHeaders {
		h.Del(f)
	}
}
