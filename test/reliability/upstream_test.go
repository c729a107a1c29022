//go:build lab

package reliability

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmesh/segmesh/internal/labenv"
	"github.com/segmesh/segmesh/test/reliability/segproc"
)

// TestLabExchangeDown stops the Exchange stand-in: requests get 502, the
// process stays up, and the next request after Exchange returns is served.
func TestLabExchangeDown(t *testing.T) {
	lab := labenv.Up(t)
	p := segproc.Start(t, segproc.WriteConfig(t, t.TempDir(), segproc.LabConfig(t, lab)))
	alice := segproc.Client(t, lab, "alice")
	url := p.URL(segproc.EAS("Sync", "alice"))
	if r := segproc.Do(alice, http.MethodGet, url, nil); r.Status != 200 {
		t.Fatalf("before the fault: %v", r)
	}
	lab.Fault(t, "exchange", true)
	for range 3 {
		if r := segproc.Do(alice, http.MethodGet, url, nil); r.Status != http.StatusBadGateway {
			t.Fatalf("Exchange down: %v, want 502", r)
		}
	}
	if !p.Running() {
		t.Fatal("segmesh exited while Exchange was down")
	}
	lab.Fault(t, "exchange", false)
	pollStatus(t, alice, url, 200, 20*time.Second)
}

// TestLabExchange5xx points the edge at an Exchange that answers 500 and
// 503: the device gets Exchange's status (and Retry-After) as sent, not a
// gateway error, and the edge keeps serving.
func TestLabExchange5xx(t *testing.T) {
	lab := labenv.Up(t)
	var hits, withNegotiate atomic.Int32
	ex := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if strings.HasPrefix(r.Header.Get("Authorization"), "Negotiate ") {
			withNegotiate.Add(1)
		}
		switch r.URL.Query().Get("Cmd") {
		case "Sync":
			w.Header().Set("Retry-After", "7")
			http.Error(w, "mailbox database offline", http.StatusServiceUnavailable)
		default:
			http.Error(w, "internal error", http.StatusInternalServerError)
		}
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ex.Listener = ln
	ex.Config.Handler = http.MaxBytesHandler(ex.Config.Handler, 1<<20)
	ex.Start()
	t.Cleanup(ex.Close)

	cfg := segproc.LabConfig(t, lab)
	segproc.Set(cfg, []any{ex.URL}, "segmesh", "edge", "exchangeUrls")
	p := segproc.Start(t, segproc.WriteConfig(t, t.TempDir(), cfg))
	alice := segproc.Client(t, lab, "alice")
	for _, tc := range []struct {
		cmd        string
		want       int
		retryAfter string
	}{
		{"Sync", http.StatusServiceUnavailable, "7"},
		{"FolderSync", http.StatusInternalServerError, ""},
	} {
		t.Run(tc.cmd, func(t *testing.T) {
			r := segproc.Do(alice, http.MethodGet, p.URL(segproc.EAS(tc.cmd, "alice")), nil)
			if r.Status != tc.want || r.Header.Get("Retry-After") != tc.retryAfter {
				t.Fatalf("Exchange answering %d: %v (Retry-After %q), want %d (Retry-After %q)",
					tc.want, r, r.Header.Get("Retry-After"), tc.want, tc.retryAfter)
			}
		})
	}
	if h, n := hits.Load(), withNegotiate.Load(); h < 2 || n != h {
		t.Errorf("Exchange saw %d requests, %d with Negotiate; want every one with Negotiate", h, n)
	}
	if !p.Running() {
		t.Fatal("segmesh exited")
	}
}

// TestLabCDPDownEndToEnd stops, then garbles, the CRL distribution point
// under a running segmesh refreshing every second: the last good CRLs stay
// in force (alice served, alice-revoked refused) through failed refreshes.
// The role-level cases (fail hard, stored copies) are services/crl's.
func TestLabCDPDownEndToEnd(t *testing.T) {
	lab := labenv.Up(t)
	cfg := segproc.LabConfig(t, lab)
	segproc.Set(cfg, 1, "segmesh", "crl", "fetchIntervalSeconds")
	p := segproc.Start(t, segproc.WriteConfig(t, t.TempDir(), cfg))
	check := func(t *testing.T, when string) {
		t.Helper()
		if r := segproc.Do(segproc.Client(t, lab, "alice"), http.MethodGet, p.URL(segproc.EAS("Sync", "alice")), nil); r.Status != 200 {
			t.Errorf("alice %s: %v", when, r)
		}
		if r := segproc.Do(segproc.Client(t, lab, "alice-revoked"), http.MethodGet, p.URL(segproc.EAS("Sync", "alice")), nil); r.Status == 200 {
			t.Errorf("alice-revoked served %s: %v", when, r)
		}
	}
	check(t, "with the CDP up")
	for _, mode := range []string{"down", "garbage"} {
		t.Run(mode, func(t *testing.T) {
			before := strings.Count(p.Output.String(), "level=WARN")
			if mode == "down" {
				lab.Fault(t, "cdp", true)
			} else {
				lab.CDPGarbage(t)
			}
			// Wait for a failed refresh to be logged, then check again.
			deadline := time.Now().Add(15 * time.Second)
			for strings.Count(p.Output.String(), "level=WARN") == before {
				if time.Now().After(deadline) {
					t.Fatalf("no failed CRL refresh logged with the CDP %s:\n%s", mode, tail(p.Output.String(), 20))
				}
				time.Sleep(100 * time.Millisecond)
			}
			check(t, "with the CDP "+mode)
		})
	}
}
