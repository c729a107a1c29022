package edge

import (
	"context"
	"crypto/tls"
	"net"
	"sync"
	"time"
)

// TLS sessions with HTTPS Exchange servers.
//
// A new upstream connection (after an idle timeout, or a parked Ping's
// own) resumes its TLS session instead of a full handshake: cheaper for
// both sides. crypto/tls keys a client's session cache by ServerName alone,
// so two Exchange servers behind one name on different ports (or a URL a
// reload moved to another port) would be offered each other's sessions; a
// server sharing the ticket key resumes it, and the connection then reports
// the certificate of the server that issued the session, not of the one
// answering, from which the channel binding is computed (kcd_binding.go).
// The edge therefore keeps one cache per upstream host:port, and dials every
// HTTPS upstream itself (dialTLS) to pick it: the transport's
// DialTLSContext, the relay and parked Pings alike.
//
// The sessions live as long as the process, and so does the trust they
// were verified with: segmesh.edge.exchangeCaFile takes a restart
// (TestUpstreamTrustTakesARestart), and crypto/tls does not verify a
// resumed session's certificate again.

const (
	// upstreamSessionsPerHost bounds each host's cache (one session is
	// enough to resume; a few cover connections opened at once).
	upstreamSessionsPerHost = 64
	// maxUpstreamSessionHosts bounds the hosts kept; past it the caches
	// start again empty (only reloads adding hosts get there).
	maxUpstreamSessionHosts = 64
)

// upstreamSessions is the TLS session caches of the HTTPS upstreams, one
// per host:port.
type upstreamSessions struct {
	mu sync.Mutex
	m  map[string]tls.ClientSessionCache
}

// forAddr returns the session cache of the upstream at addr (host:port).
func (u *upstreamSessions) forAddr(addr string) tls.ClientSessionCache {
	u.mu.Lock()
	defer u.mu.Unlock()
	c, ok := u.m[addr]
	if !ok {
		if u.m == nil || len(u.m) >= maxUpstreamSessionHosts {
			u.m = map[string]tls.ClientSessionCache{}
		}
		c = tls.NewLRUClientSessionCache(upstreamSessionsPerHost)
		u.m[addr] = c
	}
	return c
}

// dialTLS runs the TLS handshake with the upstream at addr (host:port) on
// raw: tc cloned, ServerName from addr unless set, addr's session cache,
// bounded by timeout. raw is closed when the handshake fails.
func (u *upstreamSessions) dialTLS(ctx context.Context, raw net.Conn, addr string, tc *tls.Config, timeout time.Duration) (*tls.Conn, error) {
	cfg := tc.Clone()
	if cfg.ServerName == "" {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			host = addr
		}
		cfg.ServerName = host
	}
	cfg.ClientSessionCache = u.forAddr(addr)
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c := tls.Client(raw, cfg)
	if err := c.HandshakeContext(hctx); err != nil {
		_ = raw.Close()
		return nil, err
	}
	return c, nil
}

// tlsDialer returns a DialTLSContext for the transport: dial, then dialTLS.
func (u *upstreamSessions) tlsDialer(dial func(ctx context.Context, network, addr string) (net.Conn, error), tc *tls.Config, timeout time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		raw, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return u.dialTLS(ctx, raw, addr, tc, timeout)
	}
}
