//go:build lab

package suite

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
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
	"github.com/segmesh/segmesh/internal/testpki"
	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/crl/crltest"
)

// labProc is one `segmesh run` in the test binary (admin port, /readyz,
// /status.json and /metrics as in production), stopped as SIGTERM would.
type labProc struct {
	admin, edge string
	stop        func()
}

// runProc runs roles ("crl", "edge", "crl,edge") on c with the admin port
// on 127.0.0.1:0, serving other processes on lis when not nil.
func runProc(t *testing.T, c config.Config, roles string, lis net.Listener) *labProc {
	t.Helper()
	ctors, edgeAddr := withEdgeAddr(Constructors())
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan string, 1), make(chan error, 1)
	var logs syncBuffer
	go func() {
		done <- run(ctx, Options{Roles: roles, Stderr: &logs, Constructors: ctors, GRPCListener: lis,
			Ready: func(a string) { ready <- a }, DrainTimeout: 5 * time.Second},
			func(cfg *config.Config) { *cfg = c; cfg.Segmesh.Admin.Listen = "127.0.0.1:0"; labEngine(cfg) })
	}()
	p := &labProc{}
	select {
	case p.admin = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("segmesh run --roles %s ended: %v\n%s", roles, err, logs.String())
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatalf("segmesh run --roles %s not started in 60 s\n%s", roles, logs.String())
	}
	p.edge = edgeAddr()
	var once sync.Once
	p.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Errorf("segmesh run --roles %s did not stop in 30 s", roles)
			}
		})
	}
	t.Cleanup(p.stop)
	return p
}

// labEngine sets the edge's HTTP/1.1 engine from SEGMESH_TEST_HTTP1_ENGINE
// (net/http: the engine before the relay); unset, the default (the relay)
// stays, as in the edge's and testenv's tests.
func labEngine(c *config.Config) {
	if v := os.Getenv("SEGMESH_TEST_HTTP1_ENGINE"); v != "" {
		c.Segmesh.Edge.HTTP1Engine = v
	}
}

// engineCarried fails unless the edge's /status names the engine the test
// asked for (SEGMESH_TEST_HTTP1_ENGINE, or the default) and, for the relay,
// shows it sent requests to Exchange: a lab run "with the relay" that the
// relay did not carry proves nothing.
func engineCarried(t *testing.T, engine string, relayed int64) {
	t.Helper()
	want := os.Getenv("SEGMESH_TEST_HTTP1_ENGINE")
	if want == "" {
		want = config.HTTP1Engines[0]
	}
	if engine != want || (want == "relay" && relayed == 0) {
		t.Errorf("the edge's engine is %q with %d relayed requests, want %q carrying the requests", engine, relayed, want)
	}
}

// labStatus is the part of /status.json the revocation lab tests read.
type labStatus struct {
	Sections struct {
		Edge struct {
			HTTP1Engine   string `json:"http1_engine"`
			RelayRequests int64  `json:"relay_requests"`
			Revocation    struct {
				Ready             bool      `json:"ready"`
				Reason            string    `json:"reason"`
				SnapshotVersion   uint64    `json:"snapshotVersion"`
				StreamBrokenSince time.Time `json:"streamBrokenSince"`
				RollbacksRefused  int64     `json:"rollbacksRefused"`
				FailClosedOnStale bool      `json:"failClosedOnStale"`
				Issuers           []struct {
					CRLNumber string `json:"crlNumber"`
					Serials   int    `json:"serials"`
					Stale     bool   `json:"stale"`
				} `json:"issuers"`
			} `json:"revocation"`
		} `json:"edge"`
		CRL struct {
			Sources []struct {
				CRLNumber string `json:"crlNumber"`
				Failures  int    `json:"failures"`
				LastError string `json:"lastError"`
			} `json:"sources"`
		} `json:"crl"`
	} `json:"sections"`
}

// adminGet returns the status code and body of path on the admin port.
func adminGet(t *testing.T, admin, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + admin + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, string(b)
}

// status reads /status.json.
func (p *labProc) status(t *testing.T) labStatus {
	t.Helper()
	code, body := adminGet(t, p.admin, "/status.json")
	var st labStatus
	if err := json.Unmarshal([]byte(body), &st); code != http.StatusOK || err != nil {
		t.Fatalf("/status.json %d, %v:\n%.500s", code, err, body)
	}
	return st
}

// metric returns the value of the first /metrics sample of name whose
// line holds every one of labels (`reason="x"`), and whether there is one.
func (p *labProc) metric(t *testing.T, name string, labels ...string) (float64, bool) {
	t.Helper()
	_, body := adminGet(t, p.admin, "/metrics")
next:
	for line := range strings.SplitSeq(body, "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		for _, l := range labels {
			if !strings.Contains(line, l) {
				continue next
			}
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		return v, true
	}
	return 0, false
}

// labCDP is one CRL file of the test's on the lab's distribution point
// (labtool serve on 127.0.0.4:80, the directory lab.sh publishes into),
// removed at the end of the test; the lab's own CRLs are not touched.
type labCDP struct {
	path, url string
}

func newLabCDP(t *testing.T, lab *labenv.Env, name string) *labCDP {
	t.Helper()
	c := &labCDP{path: filepath.Join(lab.Dir, "cdp", name), url: "http://cdp.lab.test/" + name}
	t.Cleanup(func() { _ = os.Remove(c.path) })
	return c
}

// serve replaces the CRL the distribution point serves (atomically).
func (c *labCDP) serve(t *testing.T, der []byte) {
	t.Helper()
	tmp := c.path + ".tmp"
	if err := os.WriteFile(tmp, der, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, c.path); err != nil {
		t.Fatal(err)
	}
}

// labIssuingCA is the lab's device issuing CA (it issued alice, bob and
// carol), read from the lab PKI so the test signs CRLs the edge trusts.
func labIssuingCA(t *testing.T, lab *labenv.Env) *crltest.CA {
	t.Helper()
	cert := testpki.CertFile(t, filepath.Join(lab.Dir, "pki", "ca", "inter.pem"))
	b, err := os.ReadFile(filepath.Join(lab.Dir, "pki", "ca", "inter.key"))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatal("inter.key: no PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	key, ok := k.(crypto.Signer)
	if !ok {
		t.Fatalf("inter.key: %T is not a signer", k)
	}
	return &crltest.CA{Cert: cert, Key: key}
}

// labSerial is the serial of a lab user's device certificate.
func labSerial(t *testing.T, lab *labenv.Env, user string) *big.Int {
	t.Helper()
	return testpki.CertFile(t, lab.User(user).Cert).SerialNumber
}

// labDevice returns a client presenting the lab user's device certificate
// (with its chain) and trusting the edge's test certificate.
func (l *revocationLab) labDevice(t *testing.T, lab *labenv.Env, user string) *http.Client {
	t.Helper()
	u := lab.User(user)
	cert, err := tls.LoadX509KeyPair(u.Chain, u.Key)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(l.serverCA.Cert)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}
