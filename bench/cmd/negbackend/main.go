// Command negbackend is the benchmarks' stand-in for Exchange: an HTTP server
// on a loopback address that verifies "Authorization: Negotiate" with
// gokrb5's SPNEGO service and a keytab (the lab's HTTP/exchange.lab.test),
// answers 200 with the authenticated user, and holds a request for
// ?hold=seconds (bounded by -max-hold) like an ActiveSync Ping. Unlike Apache
// or SOGo it holds tens of thousands of long polls with a goroutine each.
//
// With -anonymous a request without Authorization is answered too (for the
// proxies that cannot do Kerberos: the bare Go proxy and nginx); a request
// that carries a Negotiate header is always verified.
//
// With -cert and -key it serves HTTPS, and -extended-protection none|allow|require
// checks the authenticator's channel binding against its certificate the way IIS
// does for Exchange (pkg/negotiate/negotiatetest).
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jcmturner/goidentity/v6"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/service"
	"github.com/jcmturner/gokrb5/v8/spnego"

	"github.com/segmesh/segmesh/bench/loadgen"
	"github.com/segmesh/segmesh/pkg/negotiate/negotiatetest"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

type counters struct {
	ok, anon, held, unverified atomic.Int64
	// holding is the number of requests held right now; GET
	// /_negbackend/holding answers it (bench/drain.sh polls it).
	holding atomic.Int64
	// gaps is each device's time without a held request (GET
	// /_negbackend/gaps); nil measures none.
	gaps *gaps
}

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("negbackend", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.30:8080", "loopback address to listen on")
	ktFile := fs.String("keytab", "", "keytab with the service key (lab: LAB_EXCHANGE_KEYTAB); empty: -anonymous only")
	spn := fs.String("spn", "HTTP/exchange.lab.test", "the keytab principal to accept tickets for")
	anonymous := fs.Bool("anonymous", false, "answer requests without Authorization (bare proxy, nginx)")
	maxHold := fs.Duration("max-hold", 10*time.Minute, "longest ?hold= honoured")
	pac := fs.Bool("pac", false, "decode and check the ticket's PAC (costs CPU per request)")
	certFile := fs.String("cert", "", "PEM certificate to serve HTTPS with (with -key)")
	keyFile := fs.String("key", "", "PEM key of -cert")
	epName := fs.String("extended-protection", "none", "IIS Extended Protection: none, allow or require (needs -cert: a binding is to the TLS certificate)")
	pprofAddr := fs.String("pprof", "", "serve net/http/pprof on this loopback IP:port (bench/drain.sh profiles the backend)")
	verifyEvery := fs.Int("verify-every", 1, "verify 1 in N Negotiate headers cryptographically; the others only need to be present and well formed (keeps the backend off the critical path in throughput runs)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	host, _, err := net.SplitHostPort(*listen)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		logger.Error("refusing a listen address that is not a loopback IP", "listen", *listen)
		return 2
	}
	if *pprofAddr != "" {
		if _, err := loadgen.ServePprof(*pprofAddr); err != nil {
			logger.Error("serve -pprof", "err", err)
			return 2
		}
	}
	var kt *keytab.Keytab
	if *ktFile != "" {
		if kt, err = keytab.Load(*ktFile); err != nil {
			logger.Error("load keytab", "err", err)
			return 1
		}
	}
	ep, ok := map[string]negotiatetest.ExtendedProtection{"none": negotiatetest.Off, "allow": negotiatetest.Accept, "require": negotiatetest.Require}[*epName]
	if !ok {
		logger.Error("-extended-protection is none, allow or require", "value", *epName)
		return 2
	}
	var tlsCert *tls.Certificate
	if *certFile != "" || *keyFile != "" {
		c, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			logger.Error("load -cert/-key", "err", err)
			return 1
		}
		tlsCert = &c
	} else if ep != negotiatetest.Off {
		logger.Error("-extended-protection needs -cert and -key: the binding is to the TLS certificate")
		return 2
	}
	c := counters{gaps: newGaps(time.Now)}
	o := handlerOptions{SPN: *spn, Anonymous: *anonymous, MaxHold: *maxHold, PAC: *pac, VerifyEvery: *verifyEvery, EP: ep}
	if tlsCert != nil {
		o.Cert = tlsCert.Leaf
	}
	h := newHandler(kt, o, &c)
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second, IdleTimeout: 15 * time.Minute, ErrorLog: log.New(io.Discard, "", 0)}
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		logger.Error("listen", "err", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		_ = srv.Close()
	}()
	logger.Info("negbackend listening", "addr", lis.Addr().String(), "keytab", *ktFile != "", "anonymous", *anonymous, "tls", tlsCert != nil, "extended_protection", ep.String())
	if tlsCert != nil {
		lis = tls.NewListener(lis, &tls.Config{Certificates: []tls.Certificate{*tlsCert}, MinVersion: tls.VersionTLS12})
	}
	if err := srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.Error("serve", "err", err)
		return 1
	}
	logger.Info("negbackend stopped", "authenticated", c.ok.Load(), "unverified", c.unverified.Load(), "anonymous", c.anon.Load(), "held", c.held.Load())
	return 0
}

// handlerOptions configures newHandler.
type handlerOptions struct {
	// SPN is the keytab principal tickets must be for.
	SPN string
	// Anonymous answers requests without Authorization.
	Anonymous bool
	// MaxHold bounds ?hold=.
	MaxHold time.Duration
	// PAC decodes the ticket's PAC.
	PAC bool
	// VerifyEvery verifies 1 in N Negotiate headers; the others are checked
	// for form only. 0 or 1 verifies all.
	VerifyEvery int
	// EP is the Extended Protection setting checked against Cert, the
	// certificate served (nil: plain HTTP).
	EP   negotiatetest.ExtendedProtection
	Cert *x509.Certificate
}

// newHandler builds the backend's handler. A nil keytab refuses every
// request that is not answered anonymously or only checked for form.
func newHandler(kt *keytab.Keytab, o handlerOptions, c *counters) http.Handler {
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { serve(w, r, o.MaxHold, c) })
	var auth http.Handler
	if kt != nil && o.EP != negotiatetest.Off {
		auth = &negotiatetest.Acceptor{Keytab: kt, Cert: o.Cert, EP: o.EP, Next: inner}
	} else if kt != nil {
		auth = spnego.SPNEGOKRB5Authenticate(inner, kt,
			service.KeytabPrincipal(o.SPN), service.DecodePAC(o.PAC),
			service.Logger(log.New(io.Discard, "", 0)))
	}
	var seq atomic.Uint64
	every := uint64(max(1, o.VerifyEvery))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Del("X-Authenticated-User")
		if r.URL.Path == "/_negbackend/holding" {
			fmt.Fprintf(w, "%d\n", c.holding.Load())
			return
		}
		if r.URL.Path == "/_negbackend/gaps" && c.gaps != nil {
			c.gaps.write(w)
			return
		}
		authz := r.Header.Get("Authorization")
		if authz == "" && o.Anonymous {
			c.anon.Add(1)
			serve(w, r, o.MaxHold, c)
			return
		}
		if every > 1 && seq.Add(1)%every != 0 {
			tok, ok := strings.CutPrefix(authz, "Negotiate ")
			if _, err := base64.StdEncoding.DecodeString(tok); !ok || err != nil || len(tok) < 100 {
				http.Error(w, "Unauthorised.", http.StatusUnauthorized)
				return
			}
			c.unverified.Add(1)
			serve(w, r, o.MaxHold, c)
			return
		}
		if auth == nil {
			http.Error(w, "no keytab: only anonymous requests", http.StatusUnauthorized)
			return
		}
		auth.ServeHTTP(w, r)
	})
}

// serve answers one (authenticated or anonymous) request: drains the body,
// holds it for ?hold= seconds when asked (until the client goes away), and
// writes the user.
func serve(w http.ResponseWriter, r *http.Request, maxHold time.Duration, c *counters) {
	_, _ = io.Copy(io.Discard, r.Body)
	user := "anonymous"
	if id := goidentity.FromHTTPRequestContext(r); id != nil {
		user = id.UserName() + "@" + id.Domain()
		c.ok.Add(1)
	} else if u := r.Header.Get("X-Authenticated-User"); u != "" {
		user = u // set by negotiatetest.Acceptor; newHandler drops any the client sent
		c.ok.Add(1)
	}
	if s := r.URL.Query().Get("hold"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			http.Error(w, "bad hold", http.StatusBadRequest)
			return
		}
		d := min(time.Duration(n)*time.Second, maxHold)
		c.held.Add(1)
		c.holding.Add(1)
		defer c.holding.Add(-1)
		if c.gaps != nil {
			dev := r.URL.Query().Get("DeviceId")
			c.gaps.begin(dev)
			defer c.gaps.end(dev)
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	w.Header().Set("Content-Type", "application/vnd.ms-sync.wbxml")
	fmt.Fprintf(w, "%s\n", user)
}
