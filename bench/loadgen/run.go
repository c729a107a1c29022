package loadgen

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Mode is how connections are used.
type Mode string

const (
	// KeepAlive reuses connections (up to ReqsPerConn requests each).
	KeepAlive Mode = "keepalive"
	// Handshake opens a new connection, with a full TLS handshake and the
	// next certificate, for every request.
	Handshake Mode = "handshake"
)

// Kind is the traffic shape.
type Kind string

const (
	// Sync is a small ActiveSync Sync POST.
	Sync Kind = "sync"
	// Ping is an ActiveSync Ping long poll the backend holds for Hold.
	Ping Kind = "ping"
)

// Config is one load run.
type Config struct {
	// Target is the base URL (https://127.0.0.1:8443); must be loopback.
	Target string
	// ServerName verifies the server certificate; empty means Target's host.
	ServerName string
	// RootCAs verifies the server; nil skips verification (never for real use;
	// the benchmarks give the lab's server CA).
	RootCAs *x509.CertPool
	// Certs are rotated one per connection.
	Certs *Rotation
	// Mode and Kind shape the traffic.
	Mode Mode
	Kind Kind
	// Hold is how long the backend holds a Ping (sent as &hold=seconds).
	Hold time.Duration
	// Concurrency is the number of closed-loop workers; ignored when Rate > 0.
	Concurrency int
	// Rate is the open-loop request rate per second; 0 means closed loop.
	Rate float64
	// MaxInFlight bounds open-loop requests in flight; a request due when
	// the bound is reached is counted as an "overload" error.
	MaxInFlight int
	// N bounds the number of requests (errors included); 0 means no bound
	// other than Duration.
	N int64
	// Duration bounds the run.
	Duration time.Duration
	// Ramp spreads the closed-loop workers' start over this time.
	Ramp time.Duration
	// Timeout bounds one request.
	Timeout time.Duration
	// ReqsPerConn closes a keep-alive connection after that many requests
	// (the next request handshakes with the next certificate); 0 means never.
	ReqsPerConn int
	// Sources are local addresses dialled from, round robin; empty means the
	// kernel's choice.
	Sources []net.IP
	// BodySize is the POST body size.
	BodySize int
	// DevicePrefix names the DeviceId parameter's prefix (workers add a number).
	DevicePrefix string
	// Skip excludes the requests that start in the run's first Skip (the
	// connections' handshakes in keep-alive mode) from the counts, the
	// latencies and Elapsed. Duration includes it.
	Skip time.Duration
	// CPUPIDs are processes (the proxy under test) whose CPU time is read
	// from /proc when measuring starts (after Skip) and when the run ends.
	CPUPIDs []int
	// Balancer, when set, chooses the address of each closed-loop worker's
	// new connections (Target still gives the scheme and Host); nil dials
	// Target.
	Balancer *Balancer
	// ErrorBackoff is how long a closed-loop worker waits after a failed
	// request before the next, as a phone backs off; 0 retries at once.
	ErrorBackoff time.Duration
	// ErrorLog, when set, receives every failed request as a JSON line
	// (ErrorEvent: when, which worker and edge, how far it got).
	ErrorLog io.Writer
	// Resume gives each closed-loop worker (a phone) its own TLS session
	// cache, as iOS and Android keep their sessions: a reconnect resumes
	// (no certificate, no signature), on another edge too when the edges
	// share session ticket keys. A resumed session keeps the certificate
	// of the worker's last full handshake. Off, every connection makes a
	// full handshake with the next certificate.
	Resume bool
	// Client is the closed-loop workers' HTTP client: NetHTTPClient (empty:
	// the default) or PhoneClient (phone.go: one *tls.Conn per phone, no
	// net/http transport, so the harness takes less of a shared CPU).
	Client Client
}

// Result is what a run measured.
type Result struct {
	// Requests counts requests attempted, OK those answered 200.
	Requests, OK uint64
	// Errors counts failures by kind (dial, tls, timeout, http_503, ...).
	Errors map[string]uint64
	// Elapsed is the measured wall time.
	Elapsed time.Duration
	// Latency holds the successful requests' latencies (open loop: from the
	// scheduled start, so a stalled server is not hidden).
	Latency *Histogram
	// Handshakes counts client certificates handed out: the full TLS
	// handshakes (a resumed one presents none).
	Handshakes uint64
	// Resumed counts new connections whose TLS session resumed (Resume).
	Resumed uint64
	// TargetCPU is the CPUPIDs' CPU time over the measured window.
	TargetCPU time.Duration
}

type runner struct {
	cfg     Config
	hist    *Histogram
	reqs    atomic.Uint64
	ok      atomic.Uint64
	mu      sync.Mutex
	errs    map[string]uint64
	srcNext atomic.Uint64
	resumed atomic.Uint64
	body    []byte
	base    *url.URL
	from    time.Time // requests starting before it are not measured
	events  *eventLog
}

// Run runs the load until N requests were made or Duration passed.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := CheckLoopbackURL(ctx, cfg.Target, net.DefaultResolver.LookupIPAddr); err != nil {
		return nil, err
	}
	for _, s := range cfg.Sources {
		if !s.IsLoopback() {
			return nil, fmt.Errorf("%w: source %s", ErrNotLoopback, s)
		}
	}
	if cfg.Duration <= 0 {
		return nil, errors.New("loadgen: a duration bound is required")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.Kind == Ping && cfg.Timeout < cfg.Hold+10*time.Second {
		cfg.Timeout = cfg.Hold + 10*time.Second
	}
	if cfg.Certs == nil {
		cfg.Certs = NewRotation(nil)
	}
	switch cfg.Client {
	case "", NetHTTPClient:
	case PhoneClient:
		if cfg.Rate > 0 {
			return nil, errPhoneOpenLoop
		}
	default:
		return nil, fmt.Errorf("loadgen: unknown client %q (net/http or phone)", cfg.Client)
	}
	base, err := url.Parse(cfg.Target)
	if err != nil {
		return nil, fmt.Errorf("loadgen: parse target: %w", err)
	}
	r := &runner{cfg: cfg, hist: NewHistogram(), errs: map[string]uint64{}, base: base, events: newEventLog(cfg.ErrorLog)}
	r.body = easBody(cfg.BodySize)
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	start := time.Now()
	r.from = start.Add(cfg.Skip)
	h0 := cfg.Certs.Handshakes()
	type cpuRead struct {
		d   time.Duration
		err error
	}
	cpu0 := make(chan cpuRead, 1)
	go func() {
		t := time.NewTimer(cfg.Skip)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		d, err := ProcCPU(cfg.CPUPIDs)
		cpu0 <- cpuRead{d, err}
	}()
	if cfg.Rate > 0 {
		r.openLoop(ctx, start)
	} else {
		r.closedLoop(ctx)
	}
	end := time.Now()
	cpu1, err := ProcCPU(cfg.CPUPIDs)
	if err != nil {
		return nil, err
	}
	c0 := <-cpu0
	if c0.err != nil {
		return nil, c0.err
	}
	el := end.Sub(start)
	if cfg.Skip > 0 {
		el = end.Sub(r.from)
	}
	if r.events != nil && r.events.err != nil {
		return nil, fmt.Errorf("loadgen: write the error log: %w", r.events.err)
	}
	res := &Result{
		Requests: r.reqs.Load(), OK: r.ok.Load(), Errors: r.errs,
		Elapsed: el, Latency: r.hist, Handshakes: cfg.Certs.Handshakes() - h0, Resumed: r.resumed.Load(),
		TargetCPU: cpu1 - c0.d,
	}
	return res, nil
}

// easBody is a WBXML-looking Sync body of n bytes.
func easBody(n int) []byte {
	head := []byte{0x03, 0x01, 0x6a, 0x00, 0x00, 0x00, 0x45, 0x5c, 0x4f, 0x4b, 0x03}
	b := bytes.Repeat([]byte{'x'}, n)
	copy(b, head)
	return b
}

// clientTLS is a phone's TLS settings, the same for net/http's client and
// the phone client: the edge's CA, the worker's certificate, X25519 only
// (the same key-exchange group for every proxy: OpenSSL 3.0, nginx, has no
// X25519MLKEM768), TLS 1.3. With Resume it holds one session per phone,
// kept across the worker's reconnects; the cache key is the server name
// (Target's host), the same whichever edge the balancer picks.
func (r *runner) clientTLS() *tls.Config {
	c := &tls.Config{
		RootCAs:              r.cfg.RootCAs,
		ServerName:           r.cfg.ServerName,
		InsecureSkipVerify:   r.cfg.RootCAs == nil, //nolint:gosec // only when no server CA is given, loopback only
		GetClientCertificate: r.cfg.Certs.GetClientCertificate,
		CurvePreferences:     []tls.CurveID{tls.X25519},
		MinVersion:           tls.VersionTLS13,
	}
	if r.cfg.Resume {
		c.ClientSessionCache = tls.NewLRUClientSessionCache(1)
	}
	return c
}

// dialer returns the dialer of a worker's next connection: from the next
// of Sources when given, round robin.
func (r *runner) dialer() net.Dialer {
	d := net.Dialer{Timeout: 10 * time.Second, KeepAlive: -1}
	if n := len(r.cfg.Sources); n > 0 {
		d.LocalAddr = &net.TCPAddr{IP: r.cfg.Sources[int(r.srcNext.Add(1)-1)%n]}
	}
	return d
}

// addr is the address of a worker's next connection: the Balancer's pick
// when there is one, else def.
func (r *runner) addr(worker int, def string) string {
	if b := r.cfg.Balancer; b != nil {
		return b.Pick(worker)
	}
	return def
}

// transport returns a transport whose connections are the worker's: with
// a Balancer it picks their address.
func (r *runner) transport(keepIdle, worker int) *http.Transport {
	return &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			d := r.dialer()
			return d.DialContext(ctx, network, r.addr(worker, addr))
		},
		TLSClientConfig:       r.clientTLS(),
		TLSNextProto:          map[string]func(string, *tls.Conn) http.RoundTripper{},
		MaxIdleConns:          keepIdle,
		MaxIdleConnsPerHost:   keepIdle,
		DisableKeepAlives:     r.cfg.Mode == Handshake,
		DisableCompression:    true,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: r.cfg.Timeout,
		IdleConnTimeout:       90 * time.Second,
	}
}

func (r *runner) request(ctx context.Context, worker int) (*http.Request, error) {
	cmd := "Sync"
	if r.cfg.Kind == Ping {
		cmd = "Ping"
	}
	u := *r.base
	u.Path = "/Microsoft-Server-ActiveSync"
	q := "Cmd=" + cmd + "&User=segload&DeviceId=" + r.cfg.DevicePrefix + strconv.Itoa(worker) + "&DeviceType=iPhone"
	if r.cfg.Kind == Ping {
		q += "&hold=" + strconv.Itoa(int(r.cfg.Hold/time.Second))
	}
	u.RawQuery = q
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(r.body))
	if err != nil {
		return nil, fmt.Errorf("loadgen: build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/vnd.ms-sync.wbxml")
	req.Header.Set("MS-ASProtocolVersion", "14.1")
	req.Header.Set("User-Agent", "Apple-iPhone/segload")
	return req, nil
}

// do sends one request and records it. It reports whether the caller should
// drop its connection (after an error).
func (r *runner) do(ctx context.Context, client *http.Client, worker int, start time.Time) bool {
	rctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	tr := &reqTrace{resumed: &r.resumed}
	req, err := r.request(httptrace.WithClientTrace(rctx, tr.clientTrace()), worker)
	if err != nil {
		r.fail("build")
		return true
	}
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			// The run's own deadline cut the request: not the server's fault.
			r.reqs.Add(^uint64(0))
			return true
		}
		r.failed(tr.event(worker, start, "", classify(err), err))
		return true
	}
	_, err = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		if ctx.Err() != nil {
			r.reqs.Add(^uint64(0))
			return true
		}
		r.failed(tr.event(worker, start, StageBody, "body_"+classify(err), err))
		return true
	}
	if start.Before(r.from) {
		r.reqs.Add(^uint64(0))
		return false
	}
	if resp.StatusCode != http.StatusOK {
		r.failed(tr.event(worker, start, StageStatus, "http_"+strconv.Itoa(resp.StatusCode), nil))
		return false
	}
	r.hist.Record(time.Since(start))
	r.ok.Add(1)
	return false
}

// failed counts e and writes it to the error log.
func (r *runner) failed(e ErrorEvent) {
	r.fail(e.Kind)
	r.events.write(e)
}

func (r *runner) fail(kind string) {
	r.mu.Lock()
	r.errs[kind]++
	r.mu.Unlock()
}

// claim reserves one request under the N bound.
func (r *runner) claim() bool {
	n := r.reqs.Add(1)
	if r.cfg.N > 0 && n > uint64(r.cfg.N) {
		r.reqs.Add(^uint64(0))
		return false
	}
	return true
}

func (r *runner) closedLoop(ctx context.Context) {
	c := r.cfg.Concurrency
	if c < 1 {
		c = 1
	}
	var wg sync.WaitGroup
	for w := 0; w < c; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			if r.cfg.Ramp > 0 && c > 1 {
				t := time.NewTimer(time.Duration(int64(r.cfg.Ramp) * int64(w) / int64(c)))
				select {
				case <-ctx.Done():
					t.Stop()
					return
				case <-t.C:
				}
			}
			if r.cfg.Client == PhoneClient {
				r.phoneLoop(ctx, w)
				return
			}
			tr := r.transport(1, w)
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr, CheckRedirect: noRedirect}
			onConn := 0
			for ctx.Err() == nil && r.claim() {
				if r.do(ctx, client, w, time.Now()) {
					tr.CloseIdleConnections()
					onConn = 0
					backoff(ctx, r.cfg.ErrorBackoff)
					continue
				}
				onConn++
				if r.cfg.ReqsPerConn > 0 && onConn >= r.cfg.ReqsPerConn {
					tr.CloseIdleConnections()
					onConn = 0
				}
			}
		}(w)
	}
	wg.Wait()
}

func (r *runner) openLoop(ctx context.Context, start time.Time) {
	maxIn := r.cfg.MaxInFlight
	if maxIn < 1 {
		maxIn = 1024
	}
	tr := r.transport(maxIn, 0)
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, CheckRedirect: noRedirect}
	sem := make(chan struct{}, maxIn)
	interval := time.Duration(float64(time.Second) / r.cfg.Rate)
	var wg sync.WaitGroup
	timer := time.NewTimer(0)
	defer timer.Stop()
	for i := int64(0); ; i++ {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			timer.Reset(d)
			select {
			case <-ctx.Done():
				wg.Wait()
				return
			case <-timer.C:
			}
		}
		if ctx.Err() != nil || !r.claim() {
			break
		}
		select {
		case sem <- struct{}{}:
		default:
			r.fail("overload")
			continue
		}
		wg.Add(1)
		go func(i int64, due time.Time) {
			defer wg.Done()
			defer func() { <-sem }()
			r.do(ctx, client, int(i%int64(maxIn)), due)
		}(i, due)
	}
	wg.Wait()
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// classify names an error's kind for the report.
func classify(err error) string {
	var cve *tls.CertificateVerificationError
	var opErr *net.OpError
	var ae tls.AlertError
	switch {
	case errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE):
		return "too_many_files"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "addr_not_avail"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE):
		// EPIPE: the request was written into a connection the edge had
		// closed (a refused TLS 1.3 client certificate, a drain): the
		// same event as a reset seen on read.
		return "reset"
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout"
	case errors.As(err, &cve):
		return "tls_verify"
	case errors.As(err, &ae):
		return "tls_alert"
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return "eof"
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return "dial"
	case strings.Contains(err.Error(), "tls:"):
		return "tls"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	return "other"
}
