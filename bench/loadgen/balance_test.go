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
