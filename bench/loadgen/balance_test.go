package loadgen

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// TestBalancerFollowsReadiness: devices go to their home target while it is
// ready and to the next ready one once a poll saw it not ready; back home
// when it is ready again.
func TestBalancerFollowsReadiness(t *testing.T) {
	var aReady atomic.Bool
	aReady.Store(true)
	ready := func(ok *atomic.Bool) *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			if ok != nil && !ok.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
		}))
		t.Cleanup(s.Close)
		return s
	}
	ra, rb := ready(&aReady), ready(nil)
	b, err := NewBalancer(context.Background(), []string{"127.0.0.1:1001", "127.0.0.1:1002"}, []string{ra.URL + "/readyz", rb.URL + "/readyz"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go b.Poll(ctx, 5*time.Millisecond)
	waitPick := func(device int, want string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for b.Pick(device) != want {
			if time.Now().After(deadline) {
				t.Fatalf("device %d: Pick = %s, want %s", device, b.Pick(device), want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	for _, tt := range []struct {
		name   string
		aUp    bool
		device int
		want   string
	}{
		{"home a, ready", true, 0, "127.0.0.1:1001"},
		{"home b, ready", true, 1, "127.0.0.1:1002"},
		{"home a, not ready: b", false, 2, "127.0.0.1:1002"},
		{"home b unaffected", false, 3, "127.0.0.1:1002"},
		{"home a, ready again", true, 4, "127.0.0.1:1001"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			aReady.Store(tt.aUp)
			waitPick(tt.device, tt.want)
		})
	}
}

func TestBalancerRefusesBadInput(t *testing.T) {
	for _, tt := range []struct {
		name           string
		targets, ready []string
	}{
		{"no target", nil, nil},
		{"not loopback", []string{"10.0.0.1:8443"}, nil},
		{"readiness count", []string{"127.0.0.1:1", "127.0.0.1:2"}, []string{"http://127.0.0.1:9/readyz"}},
		{"readiness not loopback", []string{"127.0.0.1:1"}, []string{"http://192.0.2.1/readyz"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewBalancer(context.Background(), tt.targets, tt.ready); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

// TestBalancerReadinessThreshold: an edge too busy to answer its readiness
// poll in time stays in until Failures polls in a row went unanswered; a
// not-ready answer or a refused connection takes it out at the first poll.
func TestBalancerReadinessThreshold(t *testing.T) {
	stall := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-stall }))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(stall) }) // runs first: the server's Close waits for its handlers
	busy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(busy.Close)
	gone := httptest.NewServer(http.NotFoundHandler())
	goneURL := gone.URL
	gone.Close()
	for _, tt := range []struct {
		name   string
		url    string
		polls  int
		wantUp []bool // after each poll
		why    string // of the transition to out
	}{
		{"no answer: out at the third", slow.URL, 3, []bool{true, true, false}, "no answer: timeout"},
		{"not ready: out at once", busy.URL, 1, []bool{false}, "503"},
		{"refused: out at once", goneURL, 1, []bool{false}, "refused"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, err := NewBalancer(context.Background(), []string{"127.0.0.1:1001", "127.0.0.1:1002"}, []string{tt.url + "/readyz", tt.url + "/readyz"})
			if err != nil {
				t.Fatal(err)
			}
			b.client.Timeout = 20 * time.Millisecond
			for i := range tt.polls {
				b.record(0, b.check(context.Background(), tt.url+"/readyz"))
				if got := b.up[0].Load(); got != tt.wantUp[i] {
					t.Fatalf("after poll %d: up %v, want %v", i+1, got, tt.wantUp[i])
				}
			}
			tr := b.Transitions()
			if len(tr) != 1 || tr[0].Up || tr[0].Target != "127.0.0.1:1001" || tr[0].Why != tt.why {
				t.Fatalf("transitions %+v, want one to out for 127.0.0.1:1001 (%s)", tr, tt.why)
			}
			if got := b.Pick(0); got != "127.0.0.1:1002" {
				t.Fatalf("device 0 goes to %s once its home is out, want 127.0.0.1:1002", got)
			}
		})
	}
}
