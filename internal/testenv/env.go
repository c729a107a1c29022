package testenv

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
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

	"github.com/segmesh/segmesh/internal/suite"
	"github.com/segmesh/segmesh/internal/testlog"
	"github.com/segmesh/segmesh/internal/testpki"
	"github.com/segmesh/segmesh/pkg/certmap/ldaptest"
	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/kdc/kdctest"
	"github.com/segmesh/segmesh/pkg/role"
	"github.com/segmesh/segmesh/services/edge"
)

// Mode is the shape the roles run in.
type Mode string

const (
	// AllInOne runs every role in one suite.Run, as `segmesh run` does.
	AllInOne Mode = "all-in-one"
	// Split runs each role in its own suite.Run with its own configuration,
	// the roles talking gRPC over loopback with mTLS and the allow-list.
	Split Mode = "split"
)

// Modes lists both shapes, for tables that run in each.
var Modes = []Mode{AllInOne, Split}

// Env is one running site.
type Env struct {
	t     testing.TB
	w     *world
	dir   string
	mode  Mode
	edge  string // https://127.0.0.1:port
	procs []*proc
	// Exchange is the Exchange stand-in.
	Exchange *Exchange
	// anotherN numbers the processes AnotherEdge started.
	anotherN int
}

// proc is one suite.Run: a process's worth of roles.
type proc struct {
	roles  string
	path   string         // its config.json
	cfg    map[string]any // what path holds
	admin  string
	cancel context.CancelFunc
	done   chan error
	logs   *syncBuffer
	stop   sync.Once
	err    error
}

// Start brings up the fakes and segmesh in mode, and stops everything when
// t ends.
func Start(t testing.TB, mode Mode) *Env {
	t.Helper()
	return StartWith(t, mode, nil)
}

// StartWith is Start with adjust applied to the site's config.json (a JSON
// object) before every process is configured from it; nil changes nothing.
func StartWith(t testing.TB, mode Mode, adjust func(cfg map[string]any)) *Env {
	t.Helper()
	w := newWorld(t)
	e := &Env{t: t, w: w, dir: t.TempDir(), mode: mode, Exchange: w.exchange}
	base := e.baseConfig()
	if adjust != nil {
		adjust(base)
	}
	switch mode {
	case AllInOne:
		e.startProc(t, "all", base, nil)
	case Split:
		e.startSplit(t, base)
	default:
		t.Fatalf("testenv: unknown mode %q", mode)
	}
	if e.edge == "" {
		t.Fatal("testenv: no edge listening")
	}
	return e
}

// baseConfig is the site's config.json as a JSON object.
func (e *Env) baseConfig() map[string]any {
	w := e.w
	trust := filepath.Join(e.dir, "device-ca.pem")
	writeFile(e.t, trust, w.ca.PEM())
	exCA := filepath.Join(e.dir, "exchange-ca.pem")
	writeFile(e.t, exCA, w.exchange.caPEM)
	srvCert, srvKey := w.serverCA.Server(e.t, []string{"127.0.0.1", "seg.test.realm"}).WriteFiles(e.t, e.dir, "edge")
	return map[string]any{
		"clientCertTrustStorePath": trust,
		"requireClientCertificate": true,
		"kcd": map[string]any{
			"enabled": true, "targetSPN": SPN, "serviceAccountUserName": ServiceAccount,
			"serviceAccountPassword": ServicePassword + config.PlaintextSuffix,
			// The fake KDC's loopback port replaces the FQDN (Adjust):
			// config.json must name a domain controller by FQDN.
			"domains": []any{map[string]any{"domain": Realm, "domainController": "dc1.test.realm"}},
		},
		"customGatewaySettings": map[string]any{
			"cert.mapping.enabled":              "true",
			"cert.mapping.ldap.url":             "ldap://" + w.ldap.Addr() + "/" + baseDN,
			"cert.mapping.ldap.user":            "CN=" + ServiceAccount + ",CN=Users," + baseDN,
			"enable.cert.revocation.validation": "true",
			"remote.crl.distribution.http.uris": w.cdp.URL + "/ca.crl",
		},
		"segmesh": map[string]any{
			"edge": map[string]any{
				"listen": "127.0.0.1:0", "serverCertFile": srvCert, "serverKeyFile": srvKey,
				"exchangeUrls": []any{w.exchange.srv.URL}, "exchangeCaFile": exCA,
			},
			"admin": map[string]any{"listen": "127.0.0.1:0"},
			"crl":   map[string]any{"stateDir": filepath.Join(e.dir, "crl-cache"), "fetchIntervalSeconds": 1},
			"identity": map[string]any{
				"cacheTtlSeconds": 1, "negativeCacheTtlSeconds": 1,
			},
		},
	}
}

// startSplit starts crl, identity and ticket each behind its own gRPC
// listener (mTLS, allow-list: the edge only), then the edge dialing them.
func (e *Env) startSplit(t testing.TB, base map[string]any) {
	t.Helper()
	rpcCA := testpki.NewCA(t, "testenv role CA")
	caFile := filepath.Join(e.dir, "rpc-ca.pem")
	writeFile(t, caFile, rpcCA.PEM())
	id := func(r string) string { return "spiffe://testenv/segmesh/" + r }
	files := func(r string) (string, string) {
		c := rpcCA.Issue(t, "segmesh-"+r, testpki.IP(net.IPv4(127, 0, 0, 1)), testpki.URI(id(r)),
			testpki.EKU(x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth))
		return c.WriteFiles(t, e.dir, "rpc-"+r)
	}
	peers := map[string]string{}
	for _, r := range []string{role.CRL, role.Identity, role.Ticket} {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		peers[r] = lis.Addr().String()
		cert, key := files(r)
		cfg := clone(t, base)
		section(cfg, "segmesh")["grpc"] = map[string]any{
			"listen": lis.Addr().String(), "certFile": cert, "keyFile": key, "caFile": caFile,
			"allowedPeers": []any{id(role.Edge)},
		}
		e.startProc(t, r, cfg, lis)
	}
	cert, key := files(role.Edge)
	cfg := clone(t, base)
	sm := section(cfg, "segmesh")
	sm["grpc"] = map[string]any{"certFile": cert, "keyFile": key, "caFile": caFile}
	sm["peers"] = map[string]any{"identity": peers[role.Identity], "ticket": peers[role.Ticket], "crl": peers[role.CRL]}
	e.startProc(t, role.Edge, cfg, nil)
}

// startProc writes cfg as one process's config.json and runs roles with it.
func (e *Env) startProc(t testing.TB, roles string, cfg map[string]any, grpcLis net.Listener) {
	t.Helper()
	dir := filepath.Join(e.dir, strings.ReplaceAll(roles, ",", "-"))
	for n := 2; isDir(dir); n++ { // AnotherEdge: a second process of these roles
		dir = filepath.Join(e.dir, fmt.Sprintf("%s-%d", strings.ReplaceAll(roles, ",", "-"), n))
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "config.json")
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, b)

	var mu sync.Mutex
	var svc *edge.Service
	ctors := suite.Constructors()
	edgeCtor := ctors[role.Edge]
	ctors[role.Edge] = func(d role.Deps) (role.Role, error) {
		r, err := edgeCtor(d)
		if s, ok := r.(*edge.Service); ok {
			mu.Lock()
			svc = s
			mu.Unlock()
		}
		return r, err
	}
	p := &proc{roles: roles, path: path, cfg: cfg, done: make(chan error, 1), logs: &syncBuffer{}}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	ready := make(chan string, 1)
	go func() {
		p.done <- suite.Run(ctx, suite.Options{
			ConfigPath: path, Roles: roles, Stderr: p.logs, Constructors: ctors,
			Ready: func(a string) { ready <- a }, DrainTimeout: 5 * time.Second,
			GRPCListener: grpcLis, ReloadPoll: 100 * time.Millisecond,
			Adjust: func(c *config.Config) {
				for i := range c.KCD.Domains {
					c.KCD.Domains[i].DomainController = e.w.kdc.Addr()
				}
				// SEGMESH_TEST_HTTP1_ENGINE=net/http runs the end-to-end
				// tables with the engine before the edge's relay (the
				// default, services/edge/engine_relay.go).
				if v := os.Getenv("SEGMESH_TEST_HTTP1_ENGINE"); v != "" {
					c.Segmesh.Edge.HTTP1Engine = v
				}
			},
		})
	}()
	e.procs = append(e.procs, p)
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Errorf("segmesh run --roles=%s: %v", roles, err)
		}
		if t.Failed() {
			t.Logf("segmesh --roles=%s log:\n%s", roles, p.logs.String())
		}
	})
	select {
	case p.admin = <-ready:
	case err := <-p.done:
		p.err = err
		t.Fatalf("segmesh run --roles=%s ended at start: %v\n%s", roles, err, p.logs.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("segmesh run --roles=%s not started in 60 s\n%s", roles, p.logs.String())
	}
	mu.Lock()
	defer mu.Unlock()
	if svc != nil {
		e.edge = "https://" + svc.Addr().String()
	}
}

// Stop ends the process (SIGTERM: drain) and returns what suite.Run returned.
func (p *proc) Stop() error {
	p.stop.Do(func() {
		p.cancel()
		select {
		case p.err = <-p.done:
		case <-time.After(30 * time.Second):
			p.err = fmt.Errorf("did not stop in 30 s")
		}
	})
	return p.err
}

// AnotherEdge starts one more process with an edge beside the site's and
// returns its base URL: in Split mode an edge process dialing the same
// roles, in AllInOne another all-in-one process (its own roles, the same
// KDC, directory, CDP and Exchange). adjust changes its config.json
// first (nil changes nothing). EdgeURL keeps naming the first edge.
func (e *Env) AnotherEdge(adjust func(cfg map[string]any)) string {
	e.t.Helper()
	var first *proc
	for _, p := range e.procs {
		if p.roles == "all" || p.roles == role.Edge {
			first = p
			break
		}
	}
	if first == nil {
		e.t.Fatal("testenv: no edge process")
	}
	cfg := clone(e.t, first.cfg)
	if first.roles == "all" {
		e.anotherN++
		section(section(cfg, "segmesh"), "crl")["stateDir"] = filepath.Join(e.dir, fmt.Sprintf("crl-cache-%d", e.anotherN))
	}
	if adjust != nil {
		adjust(cfg)
	}
	url := e.edge
	e.startProc(e.t, first.roles, cfg, nil)
	url, e.edge = e.edge, url
	return url
}

// EdgeURL returns the edge's base URL plus path.
func (e *Env) EdgeURL(path string) string { return e.edge + path }

// Mode returns the shape the roles run in.
func (e *Env) Mode() Mode { return e.mode }

// StopEdge sends the edge's process SIGTERM (cancels its suite.Run) and
// returns once it has drained and stopped, with suite.Run's error.
func (e *Env) StopEdge() error {
	for _, p := range e.procs {
		if p.roles == "all" || p.roles == role.Edge {
			return p.Stop()
		}
	}
	return fmt.Errorf("testenv: no edge process")
}

// StopEdgeAsync starts the edge's drain and returns a channel with its result.
func (e *Env) StopEdgeAsync() <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- e.StopEdge() }()
	return ch
}

// EdgeMetrics returns the edge process's /metrics (Prometheus text).
func (e *Env) EdgeMetrics() (string, error) {
	for _, p := range e.procs {
		if p.roles == "all" || p.roles == role.Edge {
			resp, err := http.Get("http://" + p.admin + "/metrics")
			if err != nil {
				return "", err
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			return string(b), err
		}
	}
	return "", fmt.Errorf("testenv: no edge process")
}

// Logs returns every process's log so far.
func (e *Env) Logs() string {
	var b strings.Builder
	for _, p := range e.procs {
		fmt.Fprintf(&b, "--- %s\n%s", p.roles, p.logs.String())
	}
	return b.String()
}

// StopKDC stops the fake KDC: every domain controller of the realm is down.
func (e *Env) StopKDC() { e.w.kdc.Close() }

// Device mints a device certificate from the site's CA whose SAN names
// upnSAN (none when empty).
func (e *Env) Device(name, upnSAN string) Device {
	return e.w.device(e.t, name, upnSAN, false)
}

// UntrustedDevice mints a certificate from a CA the site does not trust.
func (e *Env) UntrustedDevice(name, upnSAN string) Device {
	return e.w.device(e.t, name, upnSAN, true)
}

// Publish puts d's certificate on the directory user name (userCertificate),
// as an admin publishes a device certificate for certificate mapping.
func (e *Env) Publish(d Device, name string) {
	dn := "CN=" + name + ",CN=Users," + baseDN
	e.w.ldap.Add(ldaptest.User(dn, name, name+"@test.realm", d.Leaf.Raw))
}

// EmailDevice mints a device certificate from the site's CA carrying only
// the SAN email address email (no UPN), as Workspace ONE, Intune or a PKI
// template often issue.
func (e *Env) EmailDevice(name, email string) Device {
	e.t.Helper()
	c := e.w.ca.Device(e.t, name, testpki.Serial(e.w.serial()),
		testpki.Subject(pkix.Name{CommonName: name, Organization: []string{"testenv"}}), testpki.Email(email))
	return Device{Name: name, Cert: c.TLS(), Leaf: c.Cert}
}

// AddDirectoryUser adds a user to the directory: sAMAccountName sam,
// userPrincipalName upn (none when empty), and any further attributes
// (mail, proxyAddresses).
func (e *Env) AddDirectoryUser(sam, upn string, attrs map[string][]string) {
	u := ldaptest.User("CN="+sam+",CN=Users,"+baseDN, sam, upn)
	for k, vs := range attrs {
		for _, v := range vs {
			u.Attrs[k] = append(u.Attrs[k], []byte(v))
		}
	}
	e.w.ldap.Add(u)
}

// Revoke adds d's serial to the CRL the CDP serves; the crl role picks it
// up at its next fetch (every second here).
func (e *Env) Revoke(d Device) {
	e.w.mu.Lock()
	e.w.revoked = append(e.w.revoked, testpki.Revoked{Serial: d.Leaf.SerialNumber, At: time.Now().Add(-time.Second)})
	e.w.mu.Unlock()
}

// Client returns an HTTP/1.1 client presenting d's certificate (none for a
// zero Device) and trusting the edge's server certificate.
func (e *Env) Client(d Device) *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(e.w.serverCA.Cert)
	tc := &tls.Config{RootCAs: pool, ServerName: "seg.test.realm", MinVersion: tls.VersionTLS12}
	if d.Leaf != nil {
		// Offer the certificate whatever CA names the edge's
		// CertificateRequest lists, as a device that ignores them does, so
		// an untrusted one reaches the edge's own verification.
		cert := d.Cert
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	}
	tr := &http.Transport{TLSClientConfig: tc, TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}
	e.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// S4U2SelfCount returns how many S4U2Self requests the KDC has received:
// one per user whose ticket segmesh had to fetch.
func (e *Env) S4U2SelfCount() int { return e.w.kdc.Count(kdctest.KindS4U2Self) }

// isDir reports whether path is a directory.
func isDir(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.IsDir()
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// section returns m[key] as a map, creating it.
func section(m map[string]any, key string) map[string]any {
	if s, ok := m[key].(map[string]any); ok {
		return s
	}
	s := map[string]any{}
	m[key] = s
	return s
}

// clone deep-copies a JSON object.
func clone(t testing.TB, m map[string]any) map[string]any {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// syncBuffer is a log buffer the roles and the test share.
type syncBuffer = testlog.Buffer

// EditConfig changes every process's config.json with edit, each file
// replaced at once (a rename, as Kubernetes swaps a mounted ConfigMap); the
// processes see it at their next poll.
func (e *Env) EditConfig(edit func(cfg map[string]any)) {
	e.t.Helper()
	for _, p := range e.procs {
		edit(p.cfg)
		b, err := json.MarshalIndent(p.cfg, "", "  ")
		if err != nil {
			e.t.Fatal(err)
		}
		tmp := p.path + ".new"
		writeFile(e.t, tmp, b)
		if err := os.Rename(tmp, p.path); err != nil {
			e.t.Fatal(err)
		}
	}
}

// EdgeAdmin GETs path on the edge process's admin server.
func (e *Env) EdgeAdmin(path string) (int, string, error) {
	for _, p := range e.procs {
		if p.roles == "all" || p.roles == role.Edge {
			resp, err := http.Get("http://" + p.admin + path)
			if err != nil {
				return 0, "", err
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b), err
		}
	}
	return 0, "", fmt.Errorf("testenv: no edge process")
}

// NewExchange starts another Exchange stand-in (same SPN and CA), for a
// changed segmesh.edge.exchangeUrls.
func (e *Env) NewExchange() *Exchange { return startExchange(e.t, e.w) }

// URL is the stand-in's base URL.
func (x *Exchange) URL() string { return x.srv.URL }
