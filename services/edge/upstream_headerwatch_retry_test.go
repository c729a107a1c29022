package edge

import (
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestResponseHeaderTimeoutNoRetry: a GET (which http.Transport may replay)
// that times out on a reused upstream connection is not sent to Exchange a
// second time. The header watch ends the wait with a read error, which the
// transport takes for a keep-alive race and replays idempotent requests on;
// each replay waited the whole timeout again.
func TestResponseHeaderTimeoutNoRetry(t *testing.T) {
	const timeout = 300 * time.Millisecond
	h := newHarness(t, nil, options{tune: func(c *Config) { c.ResponseHeaderTimeout = timeout }})
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	var syncs atomic.Int32
	h.exchange.handler = func(w http.ResponseWriter, r *http.Request, _ string) {
		if strings.Contains(r.URL.RawQuery, "Cmd=Sync") {
			syncs.Add(1)
			<-release
			return
		}
		_, _ = w.Write([]byte("ok"))
	}
	cert := h.ca.issue(t, certOpts{cn: "alice"})
	c := h.client(&cert, false)
	// An answered request leaves an idle upstream connection: the next one reuses it.
	if resp, body := get(t, c, h.url("/Microsoft-Server-ActiveSync?Cmd=FolderSync&User=alice&DeviceId=D1&DeviceType=iPhone"), nil); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("first request: %d %q", resp.StatusCode, body)
	}
	start := time.Now()
	resp, _ := get(t, c, h.url(syncPath), nil)
	took := time.Since(start)
	if n := syncs.Load(); resp.StatusCode != http.StatusGatewayTimeout || n != 1 {
		t.Fatalf("status %d after %v, Exchange got the GET %d times; want 504 and once", resp.StatusCode, took, n)
	}
	// GETs are not watched; POSTs, every EAS command, are.
	if n := h.edge.upstreams.watch.len(); n != 0 {
		t.Fatalf("%d watched upstream connections after GETs only, want 0", n)
	}
	if resp, body := post(t, c, h.url("/Microsoft-Server-ActiveSync?Cmd=FolderSync&User=alice&DeviceId=D1&DeviceType=iPhone")); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("POST: %d %q", resp.StatusCode, body)
	}
	if n := h.edge.upstreams.watch.len(); n != 1 {
		t.Fatalf("%d watched upstream connections after a POST, want 1", n)
	}
}

// post sends a small EAS-like POST and returns the response and its body.
func post(t testing.TB, c *http.Client, url string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Post(url, "application/vnd.ms-sync.wbxml", strings.NewReader("body"))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}
