package edge

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"syscall"
	"time"
)

// send dials the upstream failover picks (Service.failover, upstream.go:
// the preferred one, then the others on a dial error) and writes the
// request there with a fresh Negotiate header. The response deadline is
// set on the connection.
func (ping *parkedPing) send(ctx context.Context) error {
	s := ping.s
	var up net.Conn
	err := s.failover(true, func(u *url.URL, _ bool) error {
		c, err := s.dialUpstream(ctx, u)
		if err != nil {
			return err
		}
		// Closed unless it becomes the Ping's connection, on a panic of
		// the write too (building the Negotiate header, the outbound
		// rule): nothing else holds it (TestAttackPanicWhileSendingAParkedPing).
		defer func() {
			if up != c {
				_ = c.Close()
			}
		}()
		if err := ping.write(c, u); err != nil {
			return err
		}
		up = c
		return nil
	})
	if err != nil {
		return err
	}
	sc, ok := rawConn(up).(syscall.Conn)
	if !ok {
		_ = up.Close()
		return errors.New("edge: park Ping: upstream connection has no file descriptor")
	}
	upRaw, err := sc.SyscallConn()
	if err != nil {
		_ = up.Close()
		return fmt.Errorf("edge: park Ping: %w", err)
	}
	// Real time, not s.now: the kernel's clock runs the deadline. A
	// ResponseHeaderTimeout of 0 means none, as on the proxy path (the
	// zero deadline clears it).
	var deadline time.Time
	if s.cfg.ResponseHeaderTimeout > 0 {
		deadline = time.Now().Add(s.cfg.ResponseHeaderTimeout)
	}
	_ = up.SetReadDeadline(deadline)
	ping.mu.Lock()
	old := ping.up
	ping.up, ping.upRaw, ping.deadline = up, upRaw, deadline
	closed := ping.stopped.Load() || ping.devGone.Load() || ping.drained.Load()
	ping.mu.Unlock()
	if old != nil {
		_ = old.Close()
	}
	if closed {
		_ = up.Close()
	}
	return nil
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
	cfg.NextProtos = []string{"http/1.1"}
	// Every parked Ping dials: resume instead of a full handshake.
	tc, err := s.upstreams.sessions.dialTLS(ctx, c, host, cfg, t.TLSHandshakeTimeout)
	if err != nil {
		return nil, fmt.Errorf("edge: TLS handshake with %s: %w", u.Host, err)
	}
	return tc, nil
}

// write sends the device's request to u on c as the reverse proxy would:
// through the outbound header rule (rewrite, policy.go), the Negotiate
// header bound to c's certificate, and never without it
// (requireNegotiate).
func (ping *parkedPing) write(c net.Conn, u *url.URL) error {
	in := ping.req
	out := in.Clone(ping.ctx)
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
	ping.s.rewrite(&httputil.ProxyRequest{In: in, Out: out})
	out.URL.Scheme, out.URL.Host = u.Scheme, u.Host
	ping.s.rebind(out.Header, ping.state, u.Host, c)
	if err := ping.s.requireNegotiate(out.Header, ping.state); err != nil {
		return err
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
