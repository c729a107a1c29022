//go:build lab

package edge_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmesh/segmesh/internal/labenv"
	"github.com/segmesh/segmesh/internal/suite"
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

// eventually polls cond every 50 ms until it holds or d passes.
func eventually(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond) // polling interval, not a wait for an event
	}
}

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

// TestLabEdge covers the request path against the real directory, KDC and
// Apache mod_auth_gssapi with one running segmesh.
func TestLabEdge(t *testing.T) {
	lab := labenv.Up(t)
	sm := startSegmesh(t, lab, runOptions{})

	t.Run("users", func(t *testing.T) {
		tests := []struct {
			name, user, want string
		}{
			// UPN in the certificate's SAN.
			{name: "SAN UPN", user: "alice", want: "alice@lab.test"},
			// No UPN in the certificate: found by its userCertificate (LDAP mapping).
			{name: "mapped", user: "bob", want: "bob.smith@lab.test"},
			// SAN UPN carol.ext@LAB.TEST matches no userPrincipalName; carol's
			// altSecurityIdentities holds Kerberos:carol.ext@LAB.TEST.
			{name: "altSecurityIdentities", user: "carol", want: "carol@lab.test"},
			// Mapping wins over a SAN UPN naming someone else.
			{name: "mapping wins", user: "mallory", want: "mallory@lab.test"},
			// A certificate from the second trusted CA.
			{name: "second CA", user: "alice-ca2", want: "alice@lab.test"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				e := mustEcho(t, sm.client(t, tt.user), "POST", easURL(sm.base, "Sync", tt.user, "LABEDGE1"), []byte("<sync/>"), nil)
				if got := upnOf(e.RemoteUser); got != tt.want || e.AuthType != "Negotiate" {
					t.Fatalf("Exchange authenticated %q by %q, want %q by Negotiate", e.RemoteUser, e.AuthType, tt.want)
				}
				if e.BodyLength != int64(len("<sync/>")) || e.Path != easPath {
					t.Fatalf("request arrived as %+v", e)
				}
			})
		}
	})

	t.Run("refused", func(t *testing.T) {
		tests := []struct {
			name, user string
			logWants   func(t *testing.T) []string
		}{
			{name: "revoked", user: "alice-revoked", logWants: func(t *testing.T) []string {
				c := leafOf(t, lab.User("alice-revoked").Cert)
				return []string{"client certificate refused", "reason=revoked", c.SerialNumber.Text(16), c.Issuer.String()}
			}},
			{name: "untrusted CA", user: "alice-ca3", logWants: func(t *testing.T) []string {
				c := leafOf(t, lab.User("alice-ca3").Cert)
				return []string{"client certificate refused", "reason=untrusted", c.Issuer.String()}
			}},
			{name: "no certificate", user: "", logWants: func(*testing.T) []string {
				return []string{"client certificate refused", "reason=no_certificate"}
			}},
			{name: "expired", user: "alice-expired", logWants: func(*testing.T) []string {
				return []string{"client certificate refused", "reason=untrusted"}
			}},
			{name: "wrong EKU", user: "alice-wrongeku", logWants: func(*testing.T) []string {
				return []string{"client certificate refused", "reason=untrusted"}
			}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				before := len(sm.logs.String())
				resp, b, err := do(t, sm.client(t, tt.user), "POST", easURL(sm.base, "Sync", "alice", "LABEDGE2"), []byte("x"), nil)
				switch {
				case err != nil: // refused in the handshake: the usual outcome
				case resp.StatusCode == http.StatusForbidden:
				default:
					t.Fatalf("status %d, want a refused handshake or 403: %s", resp.StatusCode, b)
				}
				if bytes.Contains(b, []byte("remote_user")) {
					t.Fatalf("the request reached Exchange: %s", b)
				}
				wants := tt.logWants(t)
				var line string
				if !eventually(5*time.Second, func() bool {
					line = lineWith(sm.logs.String()[before:], wants[0])
					return line != ""
				}) {
					t.Fatalf("no %q line in the log:\n%s", wants[0], sm.logs.String()[before:])
				}
				for _, w := range wants[1:] {
					if !strings.Contains(line, w) {
						t.Errorf("log line lacks %q: %s", w, line)
					}
				}
			})
		}
	})

	t.Run("device Authorization replaced", func(t *testing.T) {
		hdr := http.Header{
			"Authorization":       {"Basic YWxpY2U6cGFzc3dvcmQ="},
			"Proxy-Authorization": {"Basic YWxpY2U6cGFzc3dvcmQ="},
		}
		e := mustEcho(t, sm.client(t, "alice"), "POST", easURL(sm.base, "Sync", "alice", "LABEDGE3"), []byte("x"), hdr)
		if e.OtherAuthorization || len(e.AuthorizationSchemes) != 1 || e.AuthorizationSchemes[0] != "Negotiate" {
			t.Fatalf("Exchange saw Authorization schemes %v (other %v), want only Negotiate", e.AuthorizationSchemes, e.OtherAuthorization)
		}
		if upnOf(e.RemoteUser) != "alice@lab.test" {
			t.Fatalf("remote user %q", e.RemoteUser)
		}
	})

	t.Run("Exchange statuses pass through", func(t *testing.T) {
		tests := []struct {
			name   string
			query  string
			status int
			header http.Header
		}{
			{name: "449 provision", query: "status=449", status: 449},
			{name: "451 redirect", query: "status=451&header=X-MS-Location:https://mail2.lab.test/Microsoft-Server-ActiveSync",
				status: 451, header: http.Header{"X-Ms-Location": {"https://mail2.lab.test/Microsoft-Server-ActiveSync"}}},
			{name: "503 retry-after", query: "status=503&header=Retry-After:17", status: 503, header: http.Header{"Retry-After": {"17"}}},
			{name: "456 blocked", query: "status=456", status: 456},
			{name: "457 device not provisioned", query: "status=457", status: 457},
			{name: "507 mailbox full", query: "status=507", status: 507},
			{name: "OPTIONS headers", query: "header=MS-Server-ActiveSync:15.1&header=MS-ASProtocolVersions:14.0,14.1,16.0",
				status: 200, header: http.Header{"Ms-Server-Activesync": {"15.1"}, "Ms-Asprotocolversions": {"14.0,14.1,16.0"}}},
		}
		c := sm.client(t, "alice")
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				resp, b, err := do(t, c, "POST", easURL(sm.base, "Sync", "alice", "LABEDGE4", tt.query), []byte("x"), nil)
				if err != nil {
					t.Fatal(err)
				}
				if resp.StatusCode != tt.status {
					t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, b)
				}
				for k, v := range tt.header {
					if got := resp.Header.Values(k); strings.Join(got, ",") != strings.Join(v, ",") {
						t.Errorf("%s = %q, want %q", k, got, v)
					}
				}
				var e echo
				if err := json.Unmarshal(b, &e); err != nil || upnOf(e.RemoteUser) != "alice@lab.test" {
					t.Fatalf("body is not Exchange's answer for alice: %s", b)
				}
			})
		}
	})

	t.Run("401 retried once with a new ticket", func(t *testing.T) {
		c := sm.client(t, "alice")
		key := "edge" + strconv.FormatInt(time.Now().UnixNano(), 36)
		t.Cleanup(func() { _ = os.Remove(filepath.Join(os.TempDir(), "labcgi-once-"+key)) })
		before := len(sm.logs.String())
		e := mustEcho(t, c, "POST", easURL(sm.base, "Sync", "alice", "LABEDGE5", "status=401&once="+key), []byte("<sync/>"), nil)
		if upnOf(e.RemoteUser) != "alice@lab.test" || e.BodyLength != int64(len("<sync/>")) {
			t.Fatalf("retried request arrived as %+v", e)
		}
		// Log lines are written in batches (telemetry.BufferedWriter): poll.
		var logs string
		if !eventually(5*time.Second, func() bool {
			logs = sm.logs.String()[before:]
			return strings.Contains(logs, "retrying once with a new one") && strings.Contains(lineWith(logs, "device_id=LABEDGE5"), "retried_401=true")
		}) {
			t.Fatalf("the log shows no retry:\n%s", logs)
		}

		// A 401 on the retry too reaches the device, without a challenge it cannot answer.
		resp, b, err := do(t, c, "POST", easURL(sm.base, "Sync", "alice", "LABEDGE5", "status=401&header=WWW-Authenticate:Basic"), []byte("x"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != "" {
			t.Fatalf("status %d WWW-Authenticate %q, want 401 without a challenge: %s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), b)
		}
	})
}

// TestLabKDCDown stops the KDC (lab fault kdc): a user whose ticket the edge
// holds is still served, a new user gets 503 with Retry-After, and once the
// KDC is back the new user is served.
func TestLabKDCDown(t *testing.T) {
	lab := labenv.Up(t)
	sm := startSegmesh(t, lab, runOptions{})
	cached := sm.client(t, "alice")
	mustEcho(t, cached, "POST", easURL(sm.base, "Sync", "alice", "LABKDC1"), []byte("x"), nil)

	lab.Fault(t, "kdc", true)
	e := mustEcho(t, cached, "POST", easURL(sm.base, "Sync", "alice", "LABKDC1"), []byte("x"), nil)
	if upnOf(e.RemoteUser) != "alice@lab.test" {
		t.Fatalf("cached user served as %q", e.RemoteUser)
	}
	newUser := "user0007"
	start := time.Now()
	resp, b, err := do(t, sm.client(t, newUser), "POST", easURL(sm.base, "Sync", newUser, "LABKDC2"), []byte("x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("new user with the KDC down: status %d Retry-After %q, want 503 with Retry-After: %s",
			resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}
	if bytes.Contains(b, []byte("remote_user")) {
		t.Fatalf("the request reached Exchange: %s", b)
	}
	t.Logf("new user refused with 503 after %v", time.Since(start))

	lab.Fault(t, "kdc", false)
	start = time.Now()
	var last int
	if !eventually(30*time.Second, func() bool {
		resp, _, err := do(t, sm.client(t, newUser), "POST", easURL(sm.base, "Sync", newUser, "LABKDC2"), []byte("x"), nil)
		if err == nil {
			last = resp.StatusCode
		}
		return err == nil && resp.StatusCode == http.StatusOK
	}) {
		t.Fatalf("new user not served after the KDC came back: last status %d", last)
	}
	t.Logf("new user served %v after the KDC came back", time.Since(start))
}

// TestLabPingNotCut holds an EAS Ping at Exchange four times longer than the
// listener's idle and header timeouts, made short here (1 s): nothing on the
// request path cuts it. Go's http.Server has no timeout unless one is set;
// the edge sets none that covers a whole request (no ReadTimeout or
// WriteTimeout), only ReadHeaderTimeout and IdleTimeout, and upstream a
// ResponseHeaderTimeout above the longest heartbeat (3540 s). The slow-header
// case shows the short timeouts are in force.
func TestLabPingNotCut(t *testing.T) {
	lab := labenv.Up(t)
	const short = time.Second
	sm := startSegmesh(t, lab, runOptions{tune: func(c *edge.Config) {
		c.ReadHeaderTimeout, c.IdleTimeout, c.KeepAlive = short, short, short
	}})
	c := sm.client(t, "alice")
	mustEcho(t, c, "POST", easURL(sm.base, "Sync", "alice", "LABPING1"), []byte("x"), nil) // ticket cached

	start := time.Now()
	e := mustEcho(t, c, "POST", easURL(sm.base, "Ping", "alice", "LABPING1", "hold=4"), []byte("<Ping/>"), nil)
	if took := time.Since(start); e.HeldSeconds != 4 || took < 4*short {
		t.Fatalf("Ping held %.1f s, answered after %v; want held 4 s", e.HeldSeconds, took)
	}

	// A client that never finishes its headers is cut after ReadHeaderTimeout.
	conn := dialTLS(t, lab, sm, "alice")
	if _, err := io.WriteString(conn, "POST "+easPath+"?Cmd=Sync HTTP/1.1\r\nHost: seg.lab.test\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(15 * short))
	start = time.Now()
	_, err := io.Copy(io.Discard, conn)
	if took := time.Since(start); err != nil || took > 10*short {
		t.Fatalf("slow headers: connection ended after %v with %v, want closed after about %v", took, err, short)
	}
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

// leafOf reads the first certificate of a PEM file.
func leafOf(t testing.TB, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
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
