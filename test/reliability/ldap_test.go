//go:build lab

package reliability

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/segmesh/segmesh/internal/labenv"
	"github.com/segmesh/segmesh/test/reliability/segproc"
)

// pollStatus repeats a request until it answers want, failing after d.
func pollStatus(t *testing.T, c *http.Client, url string, want int, d time.Duration) segproc.Result {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		r := segproc.Do(c, http.MethodGet, url, nil)
		if r.Status == want {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v after %s, want %d", url, r, d, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestLabLDAPDown stops (and then freezes) the directory with certificate
// mapping on. Mapping takes precedence over the SAN, so while the directory
// cannot answer segmesh does not guess from the SAN: users already mapped
// are served from the mapping cache, others get 503 with Retry-After, and
// mallory (whose SAN names alice) is never let in as alice. When the
// directory is back, new users are mapped again without a restart.
func TestLabLDAPDown(t *testing.T) {
	lab := labenv.Up(t)
	cfg := segproc.LabConfig(t, lab)
	p := segproc.Start(t, segproc.WriteConfig(t, t.TempDir(), cfg))
	alice := segproc.Client(t, lab, "alice")
	if r := segproc.Do(alice, http.MethodGet, p.URL(segproc.EAS("Sync", "alice")), nil); r.Status != 200 {
		t.Fatalf("alice before the fault: %v", r)
	}

	for _, mode := range []string{"down", "hang"} {
		t.Run(mode, func(t *testing.T) {
			if mode == "down" {
				lab.Fault(t, "ldap", true)
			} else {
				lab.Hang(t, "ldap")
			}
			if r := segproc.Do(alice, http.MethodGet, p.URL(segproc.EAS("Ping", "alice")), nil); r.Status != 200 {
				t.Errorf("alice (mapped before the fault) with LDAP %s: %v", mode, r)
			}
			// Only users not mapped before: mallory is mapped (and cached)
			// once the directory is back after "down".
			refused := map[string][]string{"down": {"bob", "mallory"}, "hang": {"carol", "user0043"}}[mode]
			for _, user := range refused {
				start := time.Now()
				r := segproc.Do(segproc.Client(t, lab, user), http.MethodGet, p.URL(segproc.EAS("Sync", user)), nil)
				if e, ok := r.Echo(); ok {
					t.Errorf("%s with LDAP %s reached Exchange as %s", user, mode, e.RemoteUser)
				}
				if r.Status != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" {
					t.Errorf("%s with LDAP %s: %v, want 503 with Retry-After", user, mode, r)
				}
				if d := time.Since(start); d > 30*time.Second {
					t.Errorf("%s with LDAP %s took %s", user, mode, d)
				}
			}
			p.WaitLog(t, "identity role unavailable", 10*time.Second)
			lab.Fault(t, "ldap", false)
			for _, user := range append(refused, fmt.Sprintf("user00%d", map[string]int{"down": 41, "hang": 42}[mode])) {
				r := pollStatus(t, segproc.Client(t, lab, user), p.URL(segproc.EAS("Sync", user)), 200, 20*time.Second)
				if e, _ := r.Echo(); user == "mallory" && segproc.Account(e.RemoteUser) == "alice" {
					t.Errorf("mallory reached Exchange as %s after the directory came back", e.RemoteUser)
				}
			}
		})
	}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
