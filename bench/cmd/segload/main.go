// Command segload is the benchmark load generator of issue 11: thousands of
// device certificates (minted from a CA key or loaded from files) rotated one
// per TLS connection, keep-alive or new-handshake-per-request, EAS-like Sync
// POSTs or Ping long polls, open-loop rate or closed-loop concurrency,
// bounded by -n and -duration, optionally from several 127.0.0.x source
// addresses and several processes. It refuses any target that is not
// loopback. See docs/benchmarks.md.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/segmesh/segmesh/bench/loadgen"
)

type options struct {
	target, serverName, serverCA               string
	caCert, caKey, certGlob, upnDomain, label  string
	sources, cpuPIDs, mode, kind, devicePrefix string
	certs, users, c, maxInFlight, reqsPerConn  int
	bodySize, procs, child                     int
	rate                                       float64
	n                                          int64
	duration, hold, ramp, timeout, skip        time.Duration
	jsonOut, warm, chain, resume               bool
	mintOut                                    string
	targets, readyURLs                         string
	readyEvery, errorBackoff                   time.Duration
	errorLog, pprofAddr                        string
	readyFailures                              int
	client                                     string
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	var o options
	fs := flag.NewFlagSet("segload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.target, "url", "https://127.0.0.1:8443", "target base URL (loopback only)")
	fs.StringVar(&o.serverName, "server-name", "", "server name to verify (default: the URL's host)")
	fs.StringVar(&o.serverCA, "server-ca", "", "PEM CA verifying the server; empty skips verification")
	fs.StringVar(&o.caCert, "ca-cert", "", "PEM CA certificate to mint device certificates with")
	fs.StringVar(&o.caKey, "ca-key", "", "PEM key of -ca-cert")
	fs.IntVar(&o.certs, "certs", 1000, "device certificates to mint (with -ca-cert/-ca-key)")
	fs.IntVar(&o.users, "users", 200, "minted certificate i carries UPN user%04d@DOMAIN, i mod users + 1")
	fs.StringVar(&o.upnDomain, "upn-domain", "lab.test", "UPN suffix of minted certificates")
	fs.BoolVar(&o.chain, "chain", false, "send the CA certificate with each minted leaf")
	fs.StringVar(&o.mintOut, "mint-out", "", "mint -certs certificates into DIR/dNNNNNN/{cert,key}.pem and exit (reuse them with -cert-dirs 'DIR/d*')")
	fs.StringVar(&o.certGlob, "cert-dirs", "", "glob of directories holding cert.pem+key.pem to use instead of minting")
	fs.StringVar(&o.mode, "mode", "keepalive", "keepalive or handshake (new connection and TLS handshake per request)")
	fs.StringVar(&o.kind, "kind", "sync", "sync (small POST) or ping (long poll held -hold by the backend)")
	fs.DurationVar(&o.hold, "hold", 60*time.Second, "how long the backend holds a Ping (sent as &hold=)")
	fs.IntVar(&o.c, "c", 16, "closed-loop concurrency (workers, one connection each)")
	fs.Float64Var(&o.rate, "rate", 0, "open-loop requests per second (overrides -c)")
	fs.IntVar(&o.maxInFlight, "max-inflight", 1024, "open loop: requests in flight before new ones count as overload")
	fs.Int64Var(&o.n, "n", 0, "maximum requests (0: only -duration bounds the run)")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "maximum run time (required, ≤ 1h)")
	fs.DurationVar(&o.skip, "skip", 0, "leave requests starting in the first SKIP of -duration out of the figures (keep-alive: the handshakes)")
	fs.DurationVar(&o.ramp, "ramp", 0, "spread the workers' start over this time")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "one request's time limit (Ping: at least hold+10s)")
	fs.IntVar(&o.reqsPerConn, "reqs-per-conn", 0, "keepalive: reconnect (next certificate) after this many requests; 0 never")
	fs.IntVar(&o.bodySize, "body", 200, "POST body bytes")
	fs.StringVar(&o.sources, "src", "", "comma-separated loopback source addresses, used round robin")
	fs.IntVar(&o.procs, "procs", 1, "child processes to split the load over (each gets c/procs, n/procs, rate/procs, its share of -src)")
	fs.StringVar(&o.cpuPIDs, "cpu-pids", "", "comma-separated PIDs whose CPU time (from /proc) is reported per request")
	fs.BoolVar(&o.warm, "warm", false, "first send one untimed request per certificate (fills the proxy's caches)")
	fs.StringVar(&o.label, "label", "segload", "name printed with the report")
	fs.StringVar(&o.devicePrefix, "device-prefix", "SEGLOAD", "DeviceId prefix")
	fs.BoolVar(&o.jsonOut, "json", false, "print the report as JSON")
	fs.IntVar(&o.child, "child", -1, "internal: child index under -procs")
	fs.StringVar(&o.targets, "targets", "", "comma-separated host:port of several edges behind a stand-in balancer: worker i's connections go to target i mod N while it is ready, else to the next ready one (-url still gives scheme and Host)")
	fs.StringVar(&o.readyURLs, "ready", "", "with -targets: comma-separated readiness URLs, one per target (http://ADMIN/readyz), polled every -ready-every")
	fs.DurationVar(&o.readyEvery, "ready-every", time.Second, "with -ready: how often the stand-in balancer polls readiness (Kubernetes: the readiness probe's period plus endpoint propagation)")
	fs.DurationVar(&o.errorBackoff, "error-backoff", 0, "closed loop: wait this long after a failed request, as a phone backs off (0: at once)")
	fs.IntVar(&o.readyFailures, "ready-failures", 3, "with -ready: unanswered polls in a row before the stand-in balancer takes an edge out (Kubernetes' failureThreshold); a not-ready answer or a refused connection takes it out at once")
	fs.BoolVar(&o.resume, "resume", false, "each worker (a phone) keeps its TLS session and resumes it when it reconnects, on any edge sharing the session ticket keys (iOS and Android keep their sessions)")
	fs.StringVar(&o.client, "client", "net/http", "closed loop: net/http (net/http's client and transport) or phone (one TLS connection per worker driven by hand: the harness takes less CPU; HTTP/1.1 only)")
	fs.StringVar(&o.pprofAddr, "pprof", "", "serve net/http/pprof on this loopback IP:port while running (bench/drain.sh profiles the load generator)")
	fs.StringVar(&o.errorLog, "error-log", "", "append every failed request to FILE as a JSON line: time, worker, edge, stage (connect, tls, write, wait, body, status), kind, error")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.duration <= 0 || o.duration > time.Hour {
		fmt.Fprintln(stderr, "segload: -duration must be in (0, 1h]")
		return 2
	}
	if o.mintOut != "" {
		if err := mintOut(o); err != nil {
			fmt.Fprintln(stderr, "segload:", err)
			return 1
		}
		return 0
	}
	if o.pprofAddr != "" && o.child < 0 {
		if _, err := loadgen.ServePprof(o.pprofAddr); err != nil {
			fmt.Fprintln(stderr, "segload:", err)
			return 2
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.procs > 1 && o.child < 0 {
		return parent(ctx, o, args, stdout, stderr)
	}
	rep, err := single(ctx, o, o.child >= 0)
	if err != nil {
		fmt.Fprintln(stderr, "segload:", err)
		return 1
	}
	if o.jsonOut || o.child >= 0 {
		if err := json.NewEncoder(stdout).Encode(rep); err != nil {
			return 1
		}
		return 0
	}
	if err := rep.WriteText(stdout); err != nil {
		return 1
	}
	return 0
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func parsePIDs(s string) ([]int, error) {
	var out []int
	for _, p := range splitList(s) {
		n, err := strconv.Atoi(p)
		if err != nil {
			return nil, fmt.Errorf("-cpu-pids: %q is not a PID", p)
		}
		out = append(out, n)
	}
	return out, nil
}

func loadCerts(o options) ([]tls.Certificate, error) {
	switch {
	case o.certGlob != "":
		return loadgen.LoadDirs(o.certGlob)
	case o.caCert != "" && o.caKey != "":
		ca, key, err := loadgen.LoadCA(o.caCert, o.caKey)
		if err != nil {
			return nil, err
		}
		users, dom := o.users, o.upnDomain
		var upn func(int) string
		if users > 0 {
			upn = func(i int) string { return fmt.Sprintf("user%04d@%s", i%users+1, dom) }
		}
		return loadgen.Mint(ca, key, loadgen.MintOptions{N: o.certs, UPN: upn, Chain: o.chain})
	}
	return nil, nil
}

func single(ctx context.Context, o options, child bool) (loadgen.Report, error) {
	var zero loadgen.Report
	srcs, err := loadgen.ParseSources(splitList(o.sources))
	if err != nil {
		return zero, err
	}
	pids, err := parsePIDs(o.cpuPIDs)
	if err != nil {
		return zero, err
	}
	certs, err := loadCerts(o)
	if err != nil {
		return zero, err
	}
	var roots *x509.CertPool
	if o.serverCA != "" {
		pem, err := os.ReadFile(o.serverCA)
		if err != nil {
			return zero, fmt.Errorf("read -server-ca: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return zero, fmt.Errorf("-server-ca %s holds no certificate", o.serverCA)
		}
	}
	rot := loadgen.NewRotation(certs)
	cfg := loadgen.Config{
		Target: o.target, ServerName: o.serverName, RootCAs: roots, Certs: rot,
		Mode: loadgen.Mode(o.mode), Kind: loadgen.Kind(o.kind), Hold: o.hold,
		Concurrency: o.c, Rate: o.rate, MaxInFlight: o.maxInFlight, N: o.n,
		Duration: o.duration, Ramp: o.ramp, Timeout: o.timeout, ReqsPerConn: o.reqsPerConn,
		Sources: srcs, BodySize: o.bodySize, DevicePrefix: o.devicePrefix, ErrorBackoff: o.errorBackoff,
		Resume: o.resume,
		Client: loadgen.Client(o.client),
	}
	if o.targets != "" {
		b, err := loadgen.NewBalancer(ctx, splitList(o.targets), splitList(o.readyURLs))
		if err != nil {
			return zero, err
		}
		b.Failures = o.readyFailures
		pctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go b.Poll(pctx, o.readyEvery)
		cfg.Balancer = b
		defer func() {
			for _, tr := range b.Transitions() {
				state := "out"
				if tr.Up {
					state = "in"
				}
				fmt.Fprintf(os.Stderr, "balancer: %d %s %s (%s)\n", tr.TimeMs, tr.Target, state, tr.Why)
			}
		}()
	}
	if cfg.Mode != loadgen.KeepAlive && cfg.Mode != loadgen.Handshake {
		return zero, fmt.Errorf("-mode %q: want keepalive or handshake", o.mode)
	}
	if cfg.Kind != loadgen.Sync && cfg.Kind != loadgen.Ping {
		return zero, fmt.Errorf("-kind %q: want sync or ping", o.kind)
	}
	if o.warm && len(certs) > 0 {
		w := cfg
		w.Mode, w.Kind, w.Rate, w.ReqsPerConn, w.Ramp = loadgen.Handshake, loadgen.Sync, 0, 0, 0
		w.N, w.Duration = int64(len(certs)), 2*time.Minute
		if w.Concurrency > 32 {
			w.Concurrency = 32
		}
		wr, err := loadgen.Run(ctx, w)
		if err != nil {
			return zero, fmt.Errorf("warm-up: %w", err)
		}
		if wr.OK < uint64(len(certs)) {
			return zero, fmt.Errorf("warm-up: %d of %d certificates answered 200 (errors %v)", wr.OK, len(certs), wr.Errors)
		}
	}
	cfg.CPUPIDs, cfg.Skip = pids, o.skip
	if o.errorLog != "" {
		// Appended, one write a line: the children of -procs share the file.
		f, err := os.OpenFile(o.errorLog, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return zero, fmt.Errorf("-error-log: %w", err)
		}
		defer f.Close()
		cfg.ErrorLog = f
	}
	res, err := loadgen.Run(ctx, cfg)
	if err != nil {
		return zero, err
	}
	return loadgen.NewReport(o.label, cfg, res, child), nil
}

// parent runs o.procs children of this binary with the load split between
// them and merges their JSON reports. CPU of -cpu-pids is measured here,
// around all children.
func parent(ctx context.Context, o options, args []string, stdout, stderr io.Writer) int {
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(stderr, "segload:", err)
		return 1
	}
	pids, err := parsePIDs(o.cpuPIDs)
	if err != nil {
		fmt.Fprintln(stderr, "segload:", err)
		return 2
	}
	srcs := splitList(o.sources)
	cpu0, err := loadgen.ProcCPU(pids)
	if err != nil {
		fmt.Fprintln(stderr, "segload:", err)
		return 1
	}
	type out struct {
		rep loadgen.Report
		err error
	}
	results := make([]out, o.procs)
	var wg sync.WaitGroup
	for i := 0; i < o.procs; i++ {
		share := func(total int) int { return total/o.procs + btoi[int](i < total%o.procs) }
		a := append([]string{}, args...)
		a = append(a, "-child="+strconv.Itoa(i), "-procs=1", "-cpu-pids=",
			"-c="+strconv.Itoa(max(1, share(o.c))),
			"-certs="+strconv.Itoa(max(1, share(o.certs))),
			"-device-prefix="+o.devicePrefix+"P"+strconv.Itoa(i)+"-",
			"-rate="+strconv.FormatFloat(o.rate/float64(o.procs), 'f', -1, 64))
		if o.n > 0 {
			a = append(a, "-n="+strconv.FormatInt(o.n/int64(o.procs)+btoi[int64](int64(i) < o.n%int64(o.procs)), 10))
		}
		if len(srcs) >= o.procs {
			var mine []string
			for j := i; j < len(srcs); j += o.procs {
				mine = append(mine, srcs[j])
			}
			a = append(a, "-src="+strings.Join(mine, ","))
		}
		wg.Add(1)
		go func(i int, a []string) {
			defer wg.Done()
			cmd := exec.CommandContext(ctx, self, a...)
			var buf bytes.Buffer
			cmd.Stdout, cmd.Stderr = &buf, stderr
			if err := cmd.Run(); err != nil {
				results[i].err = fmt.Errorf("child %d: %w", i, err)
				return
			}
			results[i].err = json.Unmarshal(buf.Bytes(), &results[i].rep)
		}(i, a)
	}
	wg.Wait()
	cpu1, err := loadgen.ProcCPU(pids)
	if err != nil {
		fmt.Fprintln(stderr, "segload:", err)
		return 1
	}
	var parts []loadgen.Report
	for _, r := range results {
		if r.err != nil {
			fmt.Fprintln(stderr, "segload:", r.err)
			return 1
		}
		parts = append(parts, r.rep)
	}
	rep := loadgen.Merge(o.label, parts)
	if cpu := cpu1 - cpu0; cpu > 0 {
		rep.TargetCPUs = cpu.Seconds()
		if rep.OK > 0 {
			rep.CPUPerReqUs = float64(cpu.Microseconds()) / float64(rep.OK)
		}
	}
	if o.jsonOut {
		if err := json.NewEncoder(stdout).Encode(rep); err != nil {
			return 1
		}
		return 0
	}
	if err := rep.WriteText(stdout); err != nil {
		return 1
	}
	return 0
}

func btoi[T int | int64](b bool) T {
	if b {
		return 1
	}
	return 0
}

// mintOut writes minted certificates and keys as PEM files, so several runs
// (and the proxies' caches they warm) see the same devices.
func mintOut(o options) error {
	if o.caCert == "" || o.caKey == "" {
		return fmt.Errorf("-mint-out needs -ca-cert and -ca-key")
	}
	certs, err := loadCerts(o)
	if err != nil {
		return err
	}
	for i, c := range certs {
		dir := filepath.Join(o.mintOut, fmt.Sprintf("d%06d", i))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("create %s: %w", dir, err)
		}
		key, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
		if err != nil {
			return fmt.Errorf("marshal key %d: %w", i, err)
		}
		var chain []byte
		for _, der := range c.Certificate {
			chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
		}
		if err := os.WriteFile(filepath.Join(dir, "cert.pem"), chain, 0o600); err != nil {
			return fmt.Errorf("write certificate %d: %w", i, err)
		}
		if err := os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}), 0o600); err != nil {
			return fmt.Errorf("write key %d: %w", i, err)
		}
	}
	return nil
}
