//go:build lab

package reliability

import (
	"fmt"
	"net/http"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/segmesh/segmesh/internal/labenv"
	"github.com/segmesh/segmesh/test/reliability/segproc"
)

// openFDs counts this process's open file descriptors.
func openFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// waitDown polls until count() is at most limit, failing after d.
func waitDown(t testing.TB, what string, count func() int, limit int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	n := count()
	for n > limit {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%s: %d after %s, want at most %d (leak)\n%s", what, n, d, limit, buf)
		}
		time.Sleep(50 * time.Millisecond)
		n = count()
	}
	t.Logf("%s back to %d (limit %d)", what, n, limit)
}

// TestLabKDCHang freezes the KDC (accepts, never answers) with segmesh in
// this process: new users get 503 with Retry-After once the KDC timeout
// passes, a cached user keeps working, and afterwards the goroutines and
// file descriptors come back down to where they were (no leak), and new
// users are served again without a restart.
func TestLabKDCHang(t *testing.T) {
	lab := labenv.Up(t)
	cfg := segproc.LabConfig(t, lab)
	segproc.Set(cfg, 2, "segmesh", "ticket", "kdcTimeoutSeconds")
	segproc.Set(cfg, "info", "segmesh", "telemetry", "logLevel")
	p := segproc.StartInProcess(t, segproc.WriteConfig(t, t.TempDir(), cfg))

	alice := segproc.Client(t, lab, "alice")
	if r := segproc.Do(alice, http.MethodGet, p.URL(segproc.EAS("FolderSync", "alice")), nil); r.Status != 200 {
		t.Fatalf("alice before the fault: %v", r)
	}
	alice.CloseIdleConnections()
	baseG, baseFD := runtime.NumGoroutine(), openFDs(t)
	t.Logf("baseline: %d goroutines, %d fds", baseG, baseFD)

	lab.Hang(t, "kdc")
	const n = 8
	var wg sync.WaitGroup
	results := make([]segproc.Result, n)
	took := make([]time.Duration, n)
	for i := range n {
		wg.Go(func() {
			user := fmt.Sprintf("user%04d", 11+i)
			c := segproc.Client(t, lab, user)
			start := time.Now()
			results[i] = segproc.Do(c, http.MethodGet, p.URL(segproc.EAS("Sync", user)), nil)
			took[i] = time.Since(start)
			c.CloseIdleConnections()
		})
	}
	// The cached user is served while the new ones wait on the KDC.
	if r := segproc.Do(alice, http.MethodGet, p.URL(segproc.EAS("Ping", "alice")), nil); r.Status != 200 {
		t.Errorf("cached alice while the KDC hangs: %v", r)
	}
	alice.CloseIdleConnections()
	wg.Wait()
	for i, r := range results {
		if r.Status != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" {
			t.Errorf("user%04d with the KDC hanging: %v (Retry-After %q), want 503 with Retry-After", 11+i, r, r.Header.Get("Retry-After"))
		}
		if took[i] > 25*time.Second {
			t.Errorf("user%04d took %s: the KDC timeout (2 s) did not bound it", 11+i, took[i])
		}
	}

	lab.Fault(t, "kdc", false) // resume the frozen forwarder
	waitDown(t, "goroutines", runtime.NumGoroutine, baseG+5, 20*time.Second)
	waitDown(t, "open fds", func() int { return openFDs(t) }, baseFD+4, 20*time.Second)

	// Back without a restart: a new user is served once the KDC answers.
	c := segproc.Client(t, lab, "user0031")
	deadline := time.Now().Add(15 * time.Second)
	for {
		r := segproc.Do(c, http.MethodGet, p.URL(segproc.EAS("Sync", "user0031")), nil)
		if r.Status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("user0031 after the KDC came back: %v", r)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestLabDCFailover lists two domain controllers for LAB.TEST with the
// first one failing and the lab KDC second: a new user is served through
// the second. "refused": nothing listens on the first one's port (config
// refuses IP addresses, so the dead DC is the lab DC's name on an unused
// port). "hanging": the first is the KDC forwarder frozen by lab.Hang (it
// accepts and never answers), the second the DC itself; the KDC timeout
// (2 s) moves on to it.
func TestLabDCFailover(t *testing.T) {
	lab := labenv.Up(t)
	for _, tc := range []struct {
		name, first, second string
		hang                bool
	}{
		{name: "refused", first: lab.DCHost + ":1088", second: lab.KDCHost},
		{name: "hanging", first: lab.KDCHost, second: lab.DCHost, hang: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := segproc.LabConfig(t, lab)
			segproc.Set(cfg, 2, "segmesh", "ticket", "kdcTimeoutSeconds")
			segproc.Set(cfg, []any{
				map[string]any{"domain": lab.Realm, "domainController": tc.first},
				map[string]any{"domain": lab.Realm, "domainController": tc.second},
			}, "kcd", "domains")
			if tc.hang {
				lab.Hang(t, "kdc")
			}
			p := segproc.Start(t, segproc.WriteConfig(t, t.TempDir(), cfg))
			for _, user := range []string{"alice", "user0032", "user0033"} {
				r := segproc.Do(segproc.Client(t, lab, user), http.MethodGet, p.URL(segproc.EAS("Sync", user)), nil)
				if _, ok := r.Echo(); !ok {
					t.Fatalf("%s with the first DC %s: %v\nlog:\n%s", user, tc.name, r, p.Output.String())
				}
			}
			// Log lines are written in batches: wait for it.
			p.WaitLog(t, "kdc attempt failed", 10*time.Second)
		})
	}
}
