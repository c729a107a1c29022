//go:build lab

package edge_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmesh/segmesh/internal/labenv"
	"github.com/segmesh/segmesh/internal/suite"
	"github.com/segmesh/segmesh/internal/testpoll"
	"github.com/segmesh/segmesh/pkg/role"
	"github.com/segmesh/segmesh/services/edge"
)

// The lab tests run `segmesh run` (every role, suite.Run) in process on a
// copy of the lab's config.json with the listeners on free loopback ports,
// and talk to the edge as a device would: mTLS with a lab user's
// certificate. Exchange is the lab's Apache mod_auth_gssapi stand-in, whose
// echo CGI answers who authenticated and what arrived (deploy/lab/README.md).

const easPath = "/Microsoft-Server-ActiveSync"

// echo is the stand-in's answer.
type echo struct {
	RemoteUser           string   `json:"remote_user"`
	AuthType             string   `json:"auth_type"`
	Method               string   `json:"method"`
	Path                 string   `json:"path"`
	Query                string   `json:"query"`
	AuthorizationSchemes []string `json:"authorization_schemes"`
	OtherAuthorization   bool     `json:"other_authorization"`
	BodyLength           int64    `json:"body_length"`
	BodySHA256           string   `json:"body_sha256"`
	HeldSeconds          float64  `json:"held_seconds"`
}

// segmesh is one in-process `segmesh run`.
type segmesh struct {
	lab  *labenv.Env
	base string // https://127.0.0.1:PORT
	logs *edge.SyncBuffer
}

// runOptions adjusts what startSegmesh runs.
type runOptions struct {
	// configFile is the config.json to start from; empty means the lab's
	// LAB_SEGMESH_CONFIG.
	configFile string
	// config edits the JSON config (a copy of the lab's) before the start.
	config func(map[string]any)
	// tune adjusts the edge's derived configuration; nil leaves it.
	tune func(*edge.Config)
}

// labConfig returns a config.json written by lab.sh (file, or the lab's
// LAB_SEGMESH_CONFIG when empty) as a map with the edge and admin listeners
// on port 0 and the CRL cache in dir.
func labConfig(t testing.TB, lab *labenv.Env, file, dir string) map[string]any {
	t.Helper()
	if file == "" {
		file = lab.SegmeshConfig
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	sm := section(cfg, "segmesh")
	section(sm, "edge")["listen"] = "127.0.0.1:0"
	section(sm, "admin")["listen"] = "127.0.0.1:0"
	section(sm, "crl")["stateDir"] = filepath.Join(dir, "crl-cache")
	// SEGMESH_TEST_HTTP1_ENGINE=net/http runs the lab tests with the
	// engine before the relay, as it does the unit tests (newHarness);
	// unset, the default (the relay).
	if v := os.Getenv("SEGMESH_TEST_HTTP1_ENGINE"); v != "" {
		section(sm, "edge")["http1Engine"] = v
	}
	return cfg
}

// section returns m[key] as a map, creating it.
func section(m map[string]any, key string) map[string]any {
	s, ok := m[key].(map[string]any)
	if !ok {
		s = map[string]any{}
		m[key] = s
	}
	return s
}

func writeConfig(t testing.TB, dir string, cfg map[string]any) string {
	t.Helper()
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "config.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// startSegmesh runs every role in process until the test ends.
func startSegmesh(t *testing.T, lab *labenv.Env, o runOptions) *segmesh {
	t.Helper()
	dir := t.TempDir()
	cfg := labConfig(t, lab, o.configFile, dir)
	if o.config != nil {
		o.config(cfg)
	}
	path := writeConfig(t, dir, cfg)

	var (
		mu  sync.Mutex
		svc *edge.Service
	)
	ctors := suite.Constructors()
	edgeCtor := ctors[role.Edge]
	if o.tune != nil {
		edgeCtor = edge.TunedConstructor(o.tune)
	}
	ctors[role.Edge] = func(d role.Deps) (role.Role, error) {
		r, err := edgeCtor(d)
		if s, ok := r.(*edge.Service); ok {
			mu.Lock()
			svc = s
			mu.Unlock()
		}
		return r, err
	}
	logs := &edge.SyncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- suite.Run(ctx, suite.Options{ConfigPath: path, Roles: "all", Stderr: logs, Constructors: ctors,
			Ready: func(a string) { ready <- a }, DrainTimeout: 5 * time.Second})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("segmesh run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("segmesh run did not stop in 30 s")
		}
		if t.Failed() {
			t.Logf("segmesh log:\n%s", logs.String())
		}
	})
	var admin string
	select {
	case admin = <-ready:
	case err := <-done:
		t.Fatalf("segmesh run ended at start: %v\n%s", err, logs.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("segmesh not started in 60 s\n%s", logs.String())
	}
	waitReady(t, admin, logs)
	mu.Lock()
	defer mu.Unlock()
	if svc == nil || svc.Addr() == nil {
		t.Fatal("no edge listening")
	}
	return &segmesh{lab: lab, base: "https://" + svc.Addr().String(), logs: logs}
}

// waitReady polls the admin /readyz until every role is ready.
func waitReady(t testing.TB, admin string, logs fmt.Stringer) {
	t.Helper()
	var last string
	ok := eventually(30*time.Second, func() bool {
		resp, err := http.Get("http://" + admin + "/readyz")
		if err != nil {
			last = err.Error()
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		last = string(b)
		return resp.StatusCode == http.StatusOK
	})
	if !ok {
		t.Fatalf("segmesh not ready in 30 s: %s\n%s", last, logs.String())
	}
}

// eventually polls cond until it holds or d passes (testpoll.Within).
func eventually(d time.Duration, cond func() bool) bool { return testpoll.Within(d, cond) }

// client returns an HTTPS client presenting user's lab certificate (none
// when user is empty) and trusting the lab's server CA.
func (s *segmesh) client(t testing.TB, user string) *http.Client {
	t.Helper()
	return labClient(t, s.lab, user)
}

func labClient(t testing.TB, lab *labenv.Env, user string) *http.Client {
	t.Helper()
	ca, err := os.ReadFile(lab.ServerCA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		t.Fatalf("%s holds no certificate", lab.ServerCA)
	}
	tc := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if user != "" {
		u := lab.User(user)
		cert, err := tls.LoadX509KeyPair(u.Cert, u.Key)
		if err != nil {
			t.Fatalf("%s's certificate: %v", user, err)
		}
		// Offer the certificate whatever CA names the CertificateRequest
		// lists: Go's client keeps back one from an untrusted CA, and the
		// edge's own refusal is what these tests look at.
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	}
	tr := &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 4}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 2 * time.Minute}
}

// do sends one request and returns the response with its body read.
func do(t testing.TB, c *http.Client, method, url string, body []byte, hdr http.Header) (*http.Response, []byte, error) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

// mustEcho sends a request that must reach Exchange and return 200.
func mustEcho(t testing.TB, c *http.Client, method, url string, body []byte, hdr http.Header) echo {
	t.Helper()
	resp, b, err := do(t, c, method, url, body, hdr)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: status %d: %s", method, url, resp.StatusCode, b)
	}
	var e echo
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("%s %s: not the stand-in's JSON: %v: %s", method, url, err, b)
	}
	return e
}

func easURL(base, cmd, user, device string, extra ...string) string {
	q := "Cmd=" + cmd + "&User=" + user + "&DeviceId=" + device + "&DeviceType=SmartPhone"
	for _, e := range extra {
		q += "&" + e
	}
	return base + easPath + "?" + q
}

// dialTLS opens a raw mTLS connection to the edge as user.
func dialTLS(t testing.TB, lab *labenv.Env, sm *segmesh, user string) *tls.Conn {
	t.Helper()
	tr := labClient(t, lab, user).Transport.(*http.Transport)
	tc := tr.TLSClientConfig.Clone()
	tc.NextProtos = []string{"http/1.1"}
	d := &tls.Dialer{Config: tc, NetDialer: &net.Dialer{Timeout: 5 * time.Second}}
	c, err := d.DialContext(context.Background(), "tcp", strings.TrimPrefix(sm.base, "https://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c.(*tls.Conn)
}

// upnOf returns the UPN Exchange authenticated: S4U2Self asks for the user
// as an enterprise name (type 10), so mod_auth_gssapi names the client
// "alice\@lab.test@LAB.TEST" (the realm after an escaped UPN).
func upnOf(remoteUser string) string {
	name, _, _ := strings.Cut(remoteUser, "@LAB.TEST")
	return strings.ReplaceAll(name, `\@`, "@")
}

// lineWith returns the first log line holding s, or "".
func lineWith(logs, s string) string {
	for l := range strings.SplitSeq(logs, "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}
