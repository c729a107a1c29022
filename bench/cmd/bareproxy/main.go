// Command bareproxy is the benchmarks' floor of cost (issue 11): a bare
// net/http/httputil.ReverseProxy behind mutual TLS. It verifies device
// certificates against the same CA files the gateway trusts and forwards to
// the backend, with no revocation check, no identity, no Kerberos. "Tuned"
// (the default) sizes the upstream idle pool to the load and pools copy
// buffers; -untuned keeps Go's defaults (2 idle connections per host).
// -device-loop serves the devices without net/http's server (loop.go), to
// measure what that server costs (issue 25's stage B).
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/http/pprof"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/segmesh/segmesh/bench/benchtls"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

type bufPool struct{ p sync.Pool }

func (b *bufPool) Get() []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, 32*1024)
}

func (b *bufPool) Put(buf []byte) { b.p.Put(&buf) }

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("bareproxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.20:8443", "loopback TLS listen address")
	certFile := fs.String("cert", "", "server certificate (PEM)")
	keyFile := fs.String("key", "", "server key (PEM)")
	clientCA := fs.String("client-ca", "", "comma-separated PEM files of trusted device CAs")
	backend := fs.String("backend", "http://127.0.0.30:8080", "upstream base URL (loopback)")
	idle := fs.Int("idle", 1024, "upstream idle connections kept (tuned)")
	untuned := fs.Bool("untuned", false, "Go's default transport and no buffer pool")
	flush := fs.Duration("flush-interval", 0, "ReverseProxy.FlushInterval when tuned (0, as the edge: flush streamed responses per write; -1: flush every write)")
	pprofAddr := fs.String("pprof", "", "loopback address serving /debug/pprof/ (empty: none)")
	deviceLoop := fs.Bool("device-loop", false, "serve devices with a per-connection loop over http.ReadRequest and a minimal ResponseWriter (loop.go) instead of net/http's server: issue 25's stage B, measured")
	padBytes := fs.Int("pad-header-bytes", 0, "add a static X-Bench-Pad header of this many bytes to every upstream request (0: none): what carrying segmesh's ~2.1 KB Negotiate header costs net/http, without Kerberos (the backend ignores it)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	up, err := url.Parse(*backend)
	if err != nil || !benchtls.LoopbackHost(up.Host) || !benchtls.LoopbackHost(*listen) {
		logger.Error("listen and backend must be loopback IP:port", "listen", *listen, "backend", *backend)
		return 2
	}
	tlsCfg, err := benchtls.ServerConfig(*certFile, *keyFile, *clientCA)
	if err != nil {
		logger.Error("TLS", "err", err)
		return 1
	}
	var pad []string
	if *padBytes > 0 {
		pad = []string{strings.Repeat("Y", *padBytes)}
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(up)
			r.Out.Host = r.In.Host
			if pad != nil {
				r.Out.Header["X-Bench-Pad"] = pad
			}
		},
		ErrorLog: log.New(io.Discard, "", 0),
	}
	if !*untuned {
		rp.Transport = &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConns:        *idle,
			MaxIdleConnsPerHost: *idle,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		}
		rp.BufferPool = &bufPool{}
		rp.FlushInterval = *flush
	}
	if *pprofAddr != "" {
		if !benchtls.LoopbackHost(*pprofAddr) {
			logger.Error("pprof address must be loopback IP:port", "pprof", *pprofAddr)
			return 2
		}
		mux := http.NewServeMux()
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		pl, err := net.Listen("tcp", *pprofAddr)
		if err != nil {
			logger.Error("listen for pprof", "err", err)
			return 1
		}
		ps := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = ps.Serve(pl) }()
		defer ps.Close()
	}
	lis, err := tls.Listen("tcp", *listen, tlsCfg)
	if err != nil {
		logger.Error("listen", "err", err)
		return 1
	}
	if *deviceLoop {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		go func() { <-ctx.Done(); _ = lis.Close() }()
		logger.Info("bareproxy listening (device loop)", "addr", lis.Addr().String(), "backend", up.String(), "tuned", !*untuned)
		if err := serveLoop(lis, rp, loopConfig{idle: 15 * time.Minute, header: 30 * time.Second}); ctx.Err() == nil {
			logger.Error("serve", "err", err)
			return 1
		}
		return 0
	}
	srv := &http.Server{Handler: rp, ReadHeaderTimeout: 30 * time.Second, IdleTimeout: 15 * time.Minute, ErrorLog: log.New(io.Discard, "", 0)}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		_ = srv.Close()
	}()
	logger.Info("bareproxy listening", "addr", lis.Addr().String(), "backend", up.String(), "tuned", !*untuned)
	if err := srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.Error("serve", "err", err)
		return 1
	}
	return 0
}
