// Command fastproxy is issue 25's fasthttp candidate as a bench-only
// proxy: github.com/valyala/fasthttp's Server behind mutual TLS in front of
// a fasthttp.HostClient to the backend, doing what bench/cmd/bareproxy
// does (device certificates verified against the gateway's CA files, no
// revocation, no identity) plus what the edge's header rule costs on the
// way: hop-by-hop headers and the device's credentials removed,
// X-Forwarded-For and X-Forwarded-Proto set, and a static header the size
// of segmesh's Negotiate header standing for KCD's (X-Bench-Negotiate: the
// backend verifies Authorization, and a static token would fail; the
// header costs fasthttp the same by either name).
//
// It is its own Go module so that fasthttp and the golang.org/x versions
// it needs never enter segmesh's go.mod or binary (issue 25: not unless it
// is chosen). The framing test runs pkg/framingtest against its handler.
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/segmesh/segmesh/bench/benchtls"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

// hopHeaders are removed from requests (RFC 9110 section 7.6.1), with the
// device's own credentials and forwarding headers; fasthttp frames the
// body itself (Content-Length or chunked).
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
	"Authorization", "Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"}

// proxy forwards each request to the backend.
type proxy struct {
	hc        *fasthttp.HostClient
	negotiate []byte
	// requireCert refuses a request without a verified client certificate
	// (the TLS door); the framing test runs without TLS.
	requireCert bool
	log         *slog.Logger
	errs        atomic.Int64 // upstream errors, the first few logged
}

// newProxy returns the proxy to backend (host:port) adding a Negotiate
// header of negotiateBytes bytes (0: none), with at most maxConns upstream
// connections (fasthttp refuses a request beyond them: a held Ping holds
// one).
func newProxy(backend string, negotiateBytes, maxConns int, requireCert bool, log *slog.Logger) *proxy {
	p := &proxy{requireCert: requireCert, log: log, hc: &fasthttp.HostClient{
		Addr:                          backend,
		MaxConns:                      maxConns,
		MaxIdleConnDuration:           90 * time.Second,
		DisableHeaderNamesNormalizing: true,
		DisablePathNormalizing:        true,
		NoDefaultUserAgentHeader:      true,
		ReadTimeout:                   0,
	}}
	if negotiateBytes > 0 {
		p.negotiate = []byte("Negotiate " + strings.Repeat("Y", negotiateBytes))
	}
	return p
}

func (p *proxy) serve(ctx *fasthttp.RequestCtx) {
	if p.requireCert {
		cs := ctx.TLSConnectionState()
		if cs == nil || len(cs.PeerCertificates) == 0 {
			ctx.Error("client certificate required", fasthttp.StatusForbidden)
			return
		}
	}
	req := &ctx.Request
	for _, f := range strings.Split(string(req.Header.Peek("Connection")), ",") {
		if f = strings.TrimSpace(f); f != "" {
			req.Header.Del(f)
		}
	}
	for _, h := range hopHeaders {
		req.Header.Del(h)
	}
	// The device spoke TLS to us; the backend is plain HTTP, and the
	// HostClient refuses a request whose URI names another scheme.
	req.URI().SetScheme("http")
	req.Header.Set("X-Forwarded-For", ctx.RemoteIP().String())
	req.Header.Set("X-Forwarded-Proto", "https")
	if p.negotiate != nil {
		req.Header.SetBytesV("X-Bench-Negotiate", p.negotiate)
	}
	if err := p.hc.Do(req, &ctx.Response); err != nil {
		if p.errs.Add(1) <= 5 {
			p.log.Warn("upstream", "err", err)
		}
		ctx.ResetBody()
		ctx.Error("bad gateway", fasthttp.StatusBadGateway)
		return
	}
	ctx.Response.Header.Del("Connection")
	ctx.Response.Header.Del("Keep-Alive")
}

// server is the fasthttp server the proxy runs in: keep-alive as the
// edge's (15 minutes idle, for held Pings), bodies buffered up to 4 MiB.
func (p *proxy) server() *fasthttp.Server {
	return &fasthttp.Server{
		Handler:                       p.serve,
		Name:                          "fastproxy",
		IdleTimeout:                   15 * time.Minute,
		DisableHeaderNamesNormalizing: true,
		NoDefaultServerHeader:         true,
		NoDefaultContentType:          true,
		NoDefaultDate:                 true,
		DisablePreParseMultipartForm:  true,
		Logger:                        discard{},
	}
}

type discard struct{}

func (discard) Printf(string, ...any) {}

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("fastproxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.29:8443", "loopback TLS listen address")
	certFile := fs.String("cert", "", "server certificate (PEM)")
	keyFile := fs.String("key", "", "server key (PEM)")
	clientCA := fs.String("client-ca", "", "comma-separated PEM files of trusted device CAs")
	backend := fs.String("backend", "127.0.0.30:8080", "upstream host:port (loopback, plain HTTP)")
	negotiateBytes := fs.Int("negotiate-bytes", 2100, "size of the static Negotiate-sized header (X-Bench-Negotiate) added to every upstream request, standing for KCD's (segmesh's is ~2.1 KB; 0: none)")
	maxConns := fs.Int("max-conns", 1024, "upstream connections at most (HostClient.MaxConns): one per request in flight, so at least the Pings held at once")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	if !benchtls.LoopbackHost(*backend) || !benchtls.LoopbackHost(*listen) {
		logger.Error("listen and backend must be loopback IP:port", "listen", *listen, "backend", *backend)
		return 2
	}
	tlsCfg, err := benchtls.ServerConfig(*certFile, *keyFile, *clientCA)
	if err != nil {
		logger.Error("TLS", "err", err)
		return 1
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		logger.Error("listen", "err", err)
		return 1
	}
	srv := newProxy(*backend, *negotiateBytes, *maxConns, true, logger).server()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.ShutdownWithContext(sctx)
	}()
	logger.Info("fastproxy listening", "addr", ln.Addr().String(), "backend", *backend)
	if err := srv.Serve(tls.NewListener(ln, tlsCfg)); err != nil {
		logger.Error("serve", "err", err)
		return 1
	}
	return 0
}
