//go:build lab

package security

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmesh/segmesh/internal/labenv"
	"github.com/segmesh/segmesh/test/reliability/segproc"
)

// recorder is an Exchange stand-in that keeps every request's header.
type recorder struct {
	mu   sync.Mutex
	seen []http.Header
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc.mu.Lock()
	rc.seen = append(rc.seen, r.Header.Clone())
	rc.mu.Unlock()
	_, _ = io.WriteString(w, "ok")
}

func (rc *recorder) take() []http.Header {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	s := rc.seen
	rc.seen = nil
	return s
}

// startWithRecorder starts segmesh on the lab's config with Exchange
// replaced by a recorder on loopback.
func startWithRecorder(t *testing.T, lab *labenv.Env) (*segproc.Proc, *recorder) {
	t.Helper()
	rc := &recorder{}
	ex := httptest.NewServer(rc)
	t.Cleanup(ex.Close)
	cfg := segproc.LabConfig(t, lab)
	segproc.Set(cfg, []any{ex.URL}, "segmesh", "edge", "exchangeUrls")
	return segproc.Start(t, segproc.WriteConfig(t, t.TempDir(), cfg)), rc
}

// TestLabDeviceCredentialsNeverReachExchange sends device credentials in
// the ways the edge-lab test does not (Proxy-Authorization, odd casing over
// HTTP/1.1, two Authorization headers, Authorization named in Connection,
// over HTTP/2) and checks that Exchange sees exactly one Authorization, the
// edge's Negotiate, and no trace of the device's credential anywhere.
func TestLabDeviceCredentialsNeverReachExchange(t *testing.T) {
	lab := labenv.Up(t)
	p, rc := startWithRecorder(t, lab)
	const secret = "ZGV2aWNlOnMzY3IzdC1kZXZpY2UtcGFzcw==" // device:s3cr3t-device-pass
	for _, tc := range []struct {
		name string
		h2   bool
		hdr  http.Header // set as is: keys need not be canonical
	}{
		{name: "Proxy-Authorization", hdr: http.Header{"Proxy-Authorization": {"Basic " + secret}}},
		{name: "lower-case authorization", hdr: http.Header{"authorization": {"Basic " + secret}}},
		{name: "upper-case AUTHORIZATION", hdr: http.Header{"AUTHORIZATION": {"Basic " + secret}}},
		{name: "two Authorization headers", hdr: http.Header{"Authorization": {"Basic " + secret, "Negotiate " + secret}}},
		{name: "device Negotiate", hdr: http.Header{"Authorization": {"Negotiate " + secret}}},
		{name: "Authorization named in Connection", hdr: http.Header{"Connection": {"Authorization"}, "Authorization": {"Basic " + secret}}},
		{name: "HTTP/2 authorization and proxy-authorization", h2: true, hdr: http.Header{"Authorization": {"Basic " + secret}, "Proxy-Authorization": {"Basic " + secret}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := &http.Transport{TLSClientConfig: segproc.TLSConfig(t, lab, segproc.UserCert(t, lab, "alice")), ForceAttemptHTTP2: tc.h2}
			if !tc.h2 {
				tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
			}
			defer tr.CloseIdleConnections()
			r := segproc.Do(&http.Client{Transport: tr, Timeout: 30 * time.Second}, http.MethodPost, p.URL(segproc.EAS("Sync", "alice")), tc.hdr)
			if r.Err != nil {
				t.Fatal(r.Err)
			}
			seen := rc.take()
			if len(seen) != 1 {
				t.Fatalf("%d requests reached Exchange, want 1: %v", len(seen), r)
			}
			for _, h := range seen {
				for k, vs := range h {
					for _, v := range vs {
						if strings.Contains(v, secret) {
							t.Errorf("the device's credential reached Exchange in %s: %q", k, v)
						}
					}
				}
				if v := h.Get("Proxy-Authorization"); v != "" {
					t.Errorf("Proxy-Authorization reached Exchange")
				}
				auth := h.Values("Authorization")
				if len(auth) != 1 || !strings.HasPrefix(auth[0], "Negotiate ") || strings.Contains(auth[0], secret) {
					t.Errorf("Exchange got Authorization %d times (want once, the edge's Negotiate)", len(auth))
				}
			}
		})
	}
}

// rawTLS opens a TLS connection to the edge presenting alice's certificate.
func rawTLS(t *testing.T, lab *labenv.Env, addr string) *tls.Conn {
	t.Helper()
	c, err := tls.Dial("tcp", addr, segproc.TLSConfig(t, lab, segproc.UserCert(t, lab, "alice")))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestLabOversizedHeaders sends a request whose headers pass the edge's
// limit (64 KiB): the answer is 431 and the connection is closed, and the
// next request is served.
func TestLabOversizedHeaders(t *testing.T) {
	lab := labenv.Up(t)
	p, _ := startWithRecorder(t, lab)
	for _, tc := range []struct {
		name    string
		headers string
	}{
		{"one huge header", "X-Big: " + strings.Repeat("a", 80<<10) + "\r\n"},
		{"many headers", strings.Repeat("X-Many: "+strings.Repeat("b", 100)+"\r\n", 1000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := rawTLS(t, lab, p.Edge)
			defer func() { _ = c.Close() }()
			_ = c.SetDeadline(time.Now().Add(15 * time.Second))
			req := "GET /Microsoft-Server-ActiveSync?Cmd=Sync HTTP/1.1\r\nHost: seg.lab.test\r\n" + tc.headers + "\r\n"
			// The edge may answer and close before reading everything.
			go func() { _, _ = io.WriteString(c, req) }()
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("read response: %v", err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge && resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d, want 431 (or 400)", resp.StatusCode)
			}
			// The connection is closed: a read ends, never hangs.
			buf := make([]byte, 1)
			for {
				if _, err := c.Read(buf); err != nil {
					if ne, ok := err.(net.Error); ok && ne.Timeout() {
						t.Fatal("the connection stayed open after 431")
					}
					break
				}
			}
		})
	}
	r := segproc.Do(segproc.Client(t, lab, "alice"), http.MethodGet, p.URL(segproc.EAS("Sync", "alice")), nil)
	if r.Status != 200 {
		t.Fatalf("alice afterwards: %v", r)
	}
}

// procRSS returns a process's resident set size in KiB.
func procRSS(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// TestLabSlowloris opens 200 connections that never finish: 100 that send
// part of a request's headers after the handshake and trickle one more
// byte a second, and 100 plain TCP connections that never start TLS. A
// normal request is served while they hang on, and the edge cuts every one
// of them at its header timeout (20 s).
func TestLabSlowloris(t *testing.T) {
	lab := labenv.Up(t)
	p, _ := startWithRecorder(t, lab)
	const each = 100
	type result struct {
		cut  bool
		took time.Duration
	}
	results := make(chan result, 2*each)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	start := time.Now()
	for i := range 2 * each {
		var conn net.Conn
		if i%2 == 0 {
			conn = rawTLS(t, lab, p.Edge)
			if _, err := io.WriteString(conn, "GET /Microsoft-Server-ActiveSync HTTP/1.1\r\nHost: seg.lab.test\r\nX-Slow: "); err != nil {
				t.Fatal(err)
			}
		} else {
			c, err := net.Dial("tcp", p.Edge)
			if err != nil {
				t.Fatal(err)
			}
			conn = c
		}
		t.Cleanup(func() { _ = conn.Close() })
		wg.Go(func() {
			// Trickle a byte a second; a failed write or a read ending
			// means the edge closed the connection.
			readDone := make(chan struct{})
			go func() {
				_, _ = io.Copy(io.Discard, conn)
				close(readDone)
			}()
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for {
				select {
				case <-readDone:
					results <- result{cut: true, took: time.Since(start)}
					return
				case <-stop:
					results <- result{took: time.Since(start)}
					return
				case <-tick.C:
					if _, err := conn.Write([]byte("x")); err != nil {
						results <- result{cut: true, took: time.Since(start)}
						return
					}
				}
			}
		})
	}
	t.Logf("%d slow connections open after %s", 2*each, time.Since(start))
	r := segproc.Do(segproc.Client(t, lab, "alice"), http.MethodGet, p.URL(segproc.EAS("Sync", "alice")), nil)
	if r.Status != 200 {
		t.Errorf("alice with %d slow connections open: %v", 2*each, r)
	}
	timer := time.AfterFunc(40*time.Second, func() { close(stop) })
	defer timer.Stop()
	wg.Wait()
	close(results)
	var cut int
	var last time.Duration
	for res := range results {
		if res.cut {
			cut++
			last = max(last, res.took)
		}
	}
	t.Logf("%d of %d cut, the last after %s", cut, 2*each, last)
	if cut != 2*each {
		t.Fatalf("%d of %d slow connections still open after 40 s (header timeout 20 s)", 2*each-cut, 2*each)
	}
	if !p.Running() {
		t.Fatal("segmesh exited")
	}
}

// TestLabHandshakeFlood makes up to 2,000 full TLS handshakes with a client
// certificate (no session resumption) from 4 goroutines, for at most 20 s:
// segmesh survives, its RSS stays bounded, and a normal request is served
// afterwards. No timing is asserted.
func TestLabHandshakeFlood(t *testing.T) {
	lab := labenv.Up(t)
	p, _ := startWithRecorder(t, lab)
	pid := p.Cmd.Process.Pid
	rss0 := procRSS(t, pid)
	cfg := segproc.TLSConfig(t, lab, segproc.UserCert(t, lab, "alice"))
	cfg.ClientSessionCache = nil
	cfg.SessionTicketsDisabled = true
	const total, workers = 2000, 4
	deadline := time.Now().Add(20 * time.Second)
	var wg sync.WaitGroup
	var mu sync.Mutex
	n, fails := 0, 0
	for range workers {
		wg.Go(func() {
			for i := 0; i < total/workers && time.Now().Before(deadline); i++ {
				c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", p.Edge, cfg)
				mu.Lock()
				n++
				if err != nil {
					fails++
				}
				mu.Unlock()
				if err == nil {
					_ = c.Close()
				}
			}
		})
	}
	wg.Wait()
	rss1 := procRSS(t, pid)
	t.Logf("%d handshakes, %d failed; RSS %d → %d KiB", n, fails, rss0, rss1)
	if !p.Running() {
		t.Fatal("segmesh exited under the handshake flood")
	}
	if fails > n/10 {
		t.Errorf("%d of %d handshakes failed", fails, n)
	}
	if rss1 > rss0+256<<10 {
		t.Errorf("RSS grew from %d to %d KiB", rss0, rss1)
	}
	r := segproc.Do(segproc.Client(t, lab, "alice"), http.MethodGet, p.URL(segproc.EAS("Sync", "alice")), nil)
	if r.Status != 200 {
		t.Fatalf("alice after the flood: %v", r)
	}
}
