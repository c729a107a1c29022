//go:build lab

package segproc

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/segmesh/segmesh/internal/labenv"
	"github.com/segmesh/segmesh/internal/suite"
	"github.com/segmesh/segmesh/internal/testlog"
)

// startTimeout bounds how long segmesh may take to report "segmesh started".
const startTimeout = 60 * time.Second

// buildOnce builds the segmesh binary once per test binary: `go build` costs
// seconds even with a warm cache, and every test starts segmesh.
var buildOnce = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "segproc-bin-")
	if err != nil {
		return "", fmt.Errorf("segproc: %w", err)
	}
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "segmesh")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, "./cmd/segmesh")...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("segproc: go build: %w\n%s", err, out)
	}
	return bin, nil
})

// Binary returns the path of a segmesh binary built from this work tree.
func Binary(t testing.TB) string {
	t.Helper()
	b, err := buildOnce()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("segproc: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("segproc: no go.mod above the working directory")
		}
		dir = parent
	}
}

// LabConfig returns the lab's config.json as a generic tree, changed for a
// test: the edge and admin on 127.0.0.1 port 0, the CRL cache in a test
// directory, the service account password as typed by an operator
// (".plaintext") and debug logging.
func LabConfig(t testing.TB, lab *labenv.Env) map[string]any {
	t.Helper()
	b, err := os.ReadFile(lab.SegmeshConfig)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("segproc: %s: %v", lab.SegmeshConfig, err)
	}
	Set(cfg, lab.SvcPassword(t)+".plaintext", "kcd", "serviceAccountPassword")
	Set(cfg, "127.0.0.1:0", "segmesh", "edge", "listen")
	Set(cfg, "127.0.0.1:0", "segmesh", "admin", "listen")
	Set(cfg, t.TempDir(), "segmesh", "crl", "stateDir")
	Set(cfg, "debug", "segmesh", "telemetry", "logLevel")
	return cfg
}

// Set sets the value at keys in a generic JSON tree, creating objects on the
// way. Keys are not split at dots (SEG's custom settings hold dots).
func Set(cfg map[string]any, v any, keys ...string) {
	m := cfg
	for _, k := range keys[:len(keys)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
	m[keys[len(keys)-1]] = v
}

// WriteConfig writes cfg as dir/config.json (mode 0640) and returns its path.
func WriteConfig(t testing.TB, dir string, cfg map[string]any) string {
	t.Helper()
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "config.json")
	if err := os.WriteFile(p, b, 0o640); err != nil {
		t.Fatal(err)
	}
	return p
}

// Buffer is a log buffer safe for a writer and readers to share.
type Buffer = testlog.Buffer

var (
	edgeAddrRE  = regexp.MustCompile(`msg="edge listening".*? addr=(\S+)`)
	adminAddrRE = regexp.MustCompile(`msg="segmesh started".* admin=(\S+)`)
	grpcAddrRE  = regexp.MustCompile(`msg="grpc listening[^"]*".*? addr=(\S+)`)
)

// FreeAddr returns a 127.0.0.1 host:port nothing listens on at the moment
// it returns (the kernel's choice, released at once): for a listener of
// segmesh's own, or for an upstream that must refuse connections.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// Proc is segmesh running as a child process.
type Proc struct {
	// Cmd is the process.
	Cmd *exec.Cmd
	// Edge is the device listener's host:port; empty when the edge role
	// does not run in this process.
	Edge string
	// Admin is the admin listener's host:port.
	Admin string
	// GRPC is the inter-role listener's host:port; empty without one.
	GRPC string
	// Output is everything the process wrote (stdout and stderr).
	Output *Buffer

	done    chan struct{}
	exitErr error
}

// Start runs `segmesh run --config cfgPath` plus args and waits until it
// reports started. The test fails if it exits first. A cleanup stops it
// (SIGTERM, then SIGKILL after 15 s).
func Start(t testing.TB, cfgPath string, args ...string) *Proc {
	t.Helper()
	return StartEnv(t, nil, cfgPath, args...)
}

// StartEnv is Start with extra environment variables (KEY=value).
func StartEnv(t testing.TB, env []string, cfgPath string, args ...string) *Proc {
	t.Helper()
	p := SpawnEnv(t, env, append([]string{"run", "--config", cfgPath}, args...)...)
	deadline := time.Now().Add(startTimeout)
	for {
		out := p.Output.String()
		if m := adminAddrRE.FindStringSubmatch(out); m != nil {
			p.Admin = m[1]
			if m := edgeAddrRE.FindStringSubmatch(out); m != nil {
				p.Edge = m[1]
			}
			if m := grpcAddrRE.FindStringSubmatch(out); m != nil {
				p.GRPC = m[1]
			}
			return p
		}
		select {
		case <-p.done:
			t.Fatalf("segmesh exited before it started (%v):\n%s", p.exitErr, p.Output.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("segmesh not started after %s:\n%s", startTimeout, out)
		}
	}
}

// Spawn starts the segmesh binary with args and returns at once.
func Spawn(t testing.TB, args ...string) *Proc {
	t.Helper()
	return SpawnEnv(t, nil, args...)
}

// SpawnEnv is Spawn with extra environment variables (KEY=value).
func SpawnEnv(t testing.TB, env []string, args ...string) *Proc {
	t.Helper()
	p := &Proc{Output: &Buffer{}, done: make(chan struct{})}
	p.Cmd = exec.Command(Binary(t), args...)
	if env != nil {
		p.Cmd.Env = append(os.Environ(), env...)
	}
	p.Cmd.Stdout, p.Cmd.Stderr = p.Output, p.Output
	if err := p.Cmd.Start(); err != nil {
		t.Fatalf("start segmesh: %v", err)
	}
	go func() {
		p.exitErr = p.Cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Stop(t)
		if strings.Contains(p.Output.String(), "WARNING: DATA RACE") {
			t.Errorf("the race detector reported a data race in segmesh (pid %d):\n%s", p.Cmd.Process.Pid, p.Output.String())
		}
	})
	return p
}

// Stop ends the process if it still runs: SIGTERM, then SIGKILL after 15 s.
func (p *Proc) Stop(t testing.TB) {
	t.Helper()
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.Cmd.Process.Kill()
		<-p.done
		t.Errorf("segmesh (pid %d) ignored SIGTERM for 15 s; killed", p.Cmd.Process.Pid)
	}
}

// Kill sends SIGKILL and waits for the process to end.
func (p *Proc) Kill() {
	_ = p.Cmd.Process.Kill()
	<-p.done
}

// Signal sends sig to the process.
func (p *Proc) Signal(t testing.TB, sig os.Signal) {
	t.Helper()
	if err := p.Cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
}

// Wait waits up to d for the process to exit and returns its exit code;
// ok is false when it still runs.
func (p *Proc) Wait(d time.Duration) (code int, ok bool) {
	select {
	case <-p.done:
		return p.Cmd.ProcessState.ExitCode(), true
	case <-time.After(d):
		return 0, false
	}
}

// Running reports whether the process has not exited.
func (p *Proc) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// URL returns the edge URL for path.
func (p *Proc) URL(path string) string { return "https://" + p.Edge + path }

// AdminURL returns the admin URL for path.
func (p *Proc) AdminURL(path string) string { return "http://" + p.Admin + path }

// WaitLog polls the output until it contains s, failing the test after d.
func (p *Proc) WaitLog(t testing.TB, s string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !strings.Contains(p.Output.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the output after %s:\n%s", s, d, p.Output.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// InProc is segmesh run in the test process through suite.Run, for tests
// that count the process's goroutines and file descriptors.
type InProc struct {
	// Edge and Admin are the listeners' host:port.
	Edge, Admin string
	// Output is the log.
	Output *Buffer

	cancel context.CancelFunc
	done   chan error
}

// StartInProcess runs suite.Run on cfgPath in this process and waits until
// it has started. A cleanup stops it.
func StartInProcess(t testing.TB, cfgPath string) *InProc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &InProc{Output: &Buffer{}, cancel: cancel, done: make(chan error, 1)}
	ready := make(chan string, 1)
	go func() {
		p.done <- suite.Run(ctx, suite.Options{ConfigPath: cfgPath, Roles: "all", Stderr: p.Output,
			Ready: func(a string) { ready <- a }, DrainTimeout: 5 * time.Second})
	}()
	select {
	case p.Admin = <-ready:
	case err := <-p.done:
		cancel()
		t.Fatalf("segmesh ended before it started: %v\n%s", err, p.Output.String())
	case <-time.After(startTimeout):
		cancel()
		t.Fatalf("segmesh not started after %s:\n%s", startTimeout, p.Output.String())
	}
	// Log lines are written in batches (telemetry.BufferedWriter), so the
	// "edge listening" line may follow the Ready call by up to 100 ms.
	for deadline := time.Now().Add(startTimeout); ; {
		if m := edgeAddrRE.FindStringSubmatch(p.Output.String()); m != nil {
			p.Edge = m[1]
			break
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("no edge address in the log after %s:\n%s", startTimeout, p.Output.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Cleanup(func() { p.Stop(t) })
	return p
}

// Stop cancels the run and waits for it to return.
func (p *InProc) Stop(t testing.TB) {
	t.Helper()
	if p.cancel == nil {
		return
	}
	p.cancel()
	p.cancel = nil
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("segmesh run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Error("segmesh did not stop in 30 s")
	}
}

// URL returns the edge URL for path.
func (p *InProc) URL(path string) string { return "https://" + p.Edge + path }

// TLSConfig returns a client TLS configuration that trusts the lab's server
// CA and presents certs (none for a client without a certificate).
func TLSConfig(t testing.TB, lab *labenv.Env, certs ...tls.Certificate) *tls.Config {
	t.Helper()
	pem, err := os.ReadFile(lab.ServerCA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("%s: no certificate", lab.ServerCA)
	}
	return &tls.Config{RootCAs: pool, Certificates: certs, MinVersion: tls.VersionTLS12}
}

// UserCert loads a lab user's device certificate with its chain.
func UserCert(t testing.TB, lab *labenv.Env, user string) tls.Certificate {
	t.Helper()
	u := lab.User(user)
	c, err := tls.LoadX509KeyPair(u.Chain, u.Key)
	if err != nil {
		t.Fatalf("load %s's certificate: %v", user, err)
	}
	return c
}

// Client returns an HTTPS client presenting the lab user's certificate
// (none when user is empty), with a 30 s timeout.
func Client(t testing.TB, lab *labenv.Env, user string) *http.Client {
	t.Helper()
	var certs []tls.Certificate
	if user != "" {
		certs = append(certs, UserCert(t, lab, user))
	}
	tr := &http.Transport{TLSClientConfig: TLSConfig(t, lab, certs...), ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// Echo is the Exchange stand-in's answer (deploy/lab/README.md).
type Echo struct {
	RemoteUser           string            `json:"remote_user"`
	AuthType             string            `json:"auth_type"`
	Path                 string            `json:"path"`
	Query                string            `json:"query"`
	AuthorizationSchemes []string          `json:"authorization_schemes"`
	OtherAuthorization   bool              `json:"other_authorization"`
	BodyLength           int               `json:"body_length"`
	Headers              map[string]string `json:"headers"`
}

// Result is one request's outcome.
type Result struct {
	// Status is the HTTP status; 0 when the request failed.
	Status int
	// Header is the response header.
	Header http.Header
	// Body is the response body.
	Body []byte
	// Err is the transport error, if any.
	Err error
}

// Echo decodes the body as the stand-in's answer; ok is false when it is not one.
func (r Result) Echo() (Echo, bool) {
	var e Echo
	if r.Status != http.StatusOK || json.Unmarshal(r.Body, &e) != nil {
		return e, false
	}
	return e, true
}

// String describes the result for a failure message.
func (r Result) String() string {
	if r.Err != nil {
		return "error: " + r.Err.Error()
	}
	b := r.Body
	if len(b) > 300 {
		b = b[:300]
	}
	return fmt.Sprintf("HTTP %d: %s", r.Status, strings.TrimSpace(string(b)))
}

// Do sends one EAS-like request through c and reads the whole answer.
func Do(c *http.Client, method, url string, hdr http.Header) Result {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return Result{Err: err}
	}
	req.Header.Set("MS-ASProtocolVersion", "14.1")
	req.Header.Set("User-Agent", "segmesh-reliability-test")
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	resp, err := c.Do(req)
	if err != nil {
		return Result{Err: err}
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	return Result{Status: resp.StatusCode, Header: resp.Header, Body: b, Err: err}
}

// EAS returns an ActiveSync URL path for user and command.
func EAS(cmd, user string) string {
	return fmt.Sprintf("/Microsoft-Server-ActiveSync?Cmd=%s&User=%s&DeviceId=TEST%s&DeviceType=iPhone", cmd, user, strings.ToUpper(strings.ReplaceAll(user, "-", "")))
}

// Account returns the account part of a name Exchange authenticated, lower
// case: "alice" for "alice\@lab.test@LAB.TEST" (an enterprise name) or
// "alice@LAB.TEST".
func Account(remoteUser string) string {
	s := strings.ReplaceAll(remoteUser, `\@`, "@")
	s, _, _ = strings.Cut(s, "@")
	return strings.ToLower(s)
}
