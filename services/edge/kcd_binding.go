package edge

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/url"
	"sync/atomic"

	"github.com/segmesh/segmesh/pkg/negotiate"
	"github.com/segmesh/segmesh/pkg/telemetry"
)

// Channel binding for Exchange's Extended Protection: the Negotiate
// authenticator carries the RFC 5929 tls-server-end-point binding of the
// certificate Exchange presents on the upstream connection that carries the
// request, as Windows clients send it. The binding depends only on that
// certificate, so it is kept per upstream (the last certificate seen) and
// the header is built with it in rewrite; when the transport hands the
// request a connection (httptrace GotConn, before the request is written)
// whose certificate differs (several Exchange servers behind one name), the
// header is built again for that connection. Over http:// there is no
// channel and no binding.

// certBinding is a certificate and its binding.
type certBinding struct {
	leaf *x509.Certificate
	cb   negotiate.Binding
}

// binder keeps the binding of the certificate last presented by one
// upstream.
type binder struct{ last atomic.Pointer[certBinding] }

// of returns leaf's binding, computing it only when leaf is not the
// certificate seen last.
func (b *binder) of(leaf *x509.Certificate) negotiate.Binding {
	if l := b.last.Load(); l != nil && (l.leaf == leaf || bytes.Equal(l.leaf.Raw, leaf.Raw)) {
		return l.cb
	}
	cb := negotiate.TLSServerEndPoint(leaf)
	b.last.Store(&certBinding{leaf: leaf, cb: cb})
	return cb
}

// expected returns the binding of the certificate seen last (zero before
// the first connection).
func (b *binder) expected() negotiate.Binding {
	if l := b.last.Load(); l != nil {
		return l.cb
	}
	return negotiate.Binding{}
}

// newBinders returns a binder per https upstream, by URL host.
func newBinders(urls []*url.URL) map[string]*binder {
	m := make(map[string]*binder, len(urls))
	for _, u := range urls {
		if u.Scheme == "https" {
			m[u.Host] = &binder{}
		}
	}
	return m
}

// peerLeaf returns the certificate the server presented on c, nil when c
// is not TLS.
func peerLeaf(c net.Conn) *x509.Certificate {
	if w, ok := c.(*watchedConn); ok {
		c = w.Conn
	}
	tc, ok := c.(interface{ ConnectionState() tls.ConnectionState })
	if !ok {
		return nil
	}
	if st := tc.ConnectionState(); len(st.PeerCertificates) > 0 {
		return st.PeerCertificates[0]
	}
	return nil
}

// negotiateHeader builds state's Negotiate header for upstream host with the
// binding expected there, and records the binding used.
func (s *Service) negotiateHeader(state *requestState, host string) (string, error) {
	var cb negotiate.Binding
	if b := s.upstreams.route.Load().binders[host]; b != nil {
		cb = b.expected()
	}
	h, sent, err := state.ticket.neg.header(cb)
	if err == nil {
		state.cb, state.sent = cb, sent
	}
	return h, err
}

// rebind builds h's Authorization again when the connection c to host
// presents another certificate than the one the header is bound to.
func (s *Service) rebind(h http.Header, state *requestState, host string, c net.Conn) {
	b := s.upstreams.route.Load().binders[host]
	if b == nil || state == nil || state.ticket == nil {
		return
	}
	leaf := peerLeaf(c)
	if leaf == nil {
		return
	}
	cb := b.of(leaf)
	if cb == state.cb {
		return
	}
	v, sent, err := state.ticket.neg.header(cb)
	if err != nil {
		s.log.Error("build Negotiate header", telemetry.AttrUPN, state.upn, "err", err)
		return
	}
	h["Authorization"] = []string{v}
	state.cb, state.sent = cb, sent
}
