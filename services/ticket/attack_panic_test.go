package ticket

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/segmesh/segmesh/internal/testlog"
	"github.com/segmesh/segmesh/internal/testmetric"
	"github.com/segmesh/segmesh/internal/testpoll"
	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/role"
	"github.com/segmesh/segmesh/pkg/s4u"
	"github.com/segmesh/segmesh/pkg/telemetry"
)

// TestAttackPanicInTheFetchReachesTheCaller: a KDC reply that panics a
// parser during the S4U exchange (what pkg/rpc's recovery, 3c68727, is
// for). The exchange runs in the cache's shared call (singleflight's
// DoChan goroutine), not in the gRPC handler's goroutine, and DoChan
// re-raises a panic in a goroutine of its own that nothing can recover:
// the whole process went down, every role in it, whatever the handler
// recovered. Attacker review rvedge: this crashed the test binary on main.
// Now the panic is raised again in each waiting caller's goroutine (the
// handler's, where the rpc recovery answers Internal and logs it), nothing
// is stored for the user, a refresh that panics keeps the ticket in use and
// waits as after a failure, and the next call, another user's or the same
// one's, is served.
func TestAttackPanicInTheFetchReachesTheCaller(t *testing.T) {
	now := time.Now()
	var calls atomic.Int32
	var panicking atomic.Bool
	fetch := func(_ context.Context, user, _ string, _ *s4u.Ticket) (*s4u.Ticket, error) {
		calls.Add(1)
		if user == "mallory@lab.test" || panicking.Load() {
			panic("unexpected KDC reply for " + user)
		}
		return &s4u.Ticket{CRealm: user, StartTime: now, EndTime: now.Add(10 * time.Hour)}, nil
	}
	clock := now
	c := newTicketCache(fetch, Config{CacheSize: 10, RefreshMargin: time.Hour, MinRemaining: 2 * time.Minute},
		func() time.Time { return clock }, nil)

	for _, tc := range []struct {
		name, user string
		panics     bool
	}{
		{"mallory's exchange panics", "mallory@lab.test", true},
		{"alice is served after it", "alice@lab.test", false},
		{"mallory's next call asks the KDC again", "mallory@lab.test", true},
		{"alice's ticket is a hit", "alice@lab.test", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := calls.Load()
			tk, v := getRecovered(c, tc.user)
			if tc.panics {
				if v == nil || !strings.Contains(v.(error).Error(), "unexpected KDC reply for "+tc.user) {
					t.Fatalf("Get(%s) = %v, panic %v; want the fetch's panic raised in the caller", tc.user, tk, v)
				}
				if calls.Load() != before+1 {
					t.Fatalf("Get(%s) made %d fetches, want 1 (nothing stored after a panic)", tc.user, calls.Load()-before)
				}
				return
			}
			if v != nil || tk == nil || tk.CRealm != tc.user {
				t.Fatalf("Get(%s) = %v, panic %v; want %s's ticket", tc.user, tk, v, tc.user)
			}
		})
	}

	// A refresh that panics: the call that started it gets the panic, the
	// ticket stays in use and the next refresh waits as after a failure.
	clock = now.Add(9*time.Hour + 30*time.Minute) // within the refresh margin
	panicking.Store(true)
	if _, v := getRecovered(c, "alice@lab.test"); v == nil {
		t.Fatal("alice's refresh panicked and her call did not get the panic")
	}
	before := calls.Load()
	if tk, v := getRecovered(c, "alice@lab.test"); v != nil || tk == nil || tk.CRealm != "alice@lab.test" || calls.Load() != before {
		t.Fatalf("after a panicking refresh Get = %v, panic %v, %d fetches; want alice's ticket without a fetch", tk, v, calls.Load()-before)
	}
}

// getRecovered calls c.Get for user and returns its ticket or the value it
// panicked with (what pkg/rpc's recovery gets).
func getRecovered(c *ticketCache, user string) (tk *s4u.Ticket, v any) {
	defer func() { v = recover() }()
	tk, _, err := c.Get(context.Background(), user, exchSPN)
	if err != nil {
		return nil, err
	}
	return tk, nil
}

// TestSharedFetchPanicLoggedAndCounted: a shared KDC exchange that panics
// after its callers left (their contexts ended), and a TGT refresh that
// panics, had nobody to raise the panic to: it was dropped unlogged (the
// TGT's was logged, never counted). Now each is logged at error level with
// its stack and counted in segmesh_background_panics by task.
func TestSharedFetchPanicLoggedAndCounted(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	logs := &lockedLog{}
	c := config.Default()
	svc, err := New(role.Deps{Config: &c, Meter: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)).Meter("ticket"),
		Logger: slog.New(slog.NewTextHandler(logs, nil))}, WithConfig(testConfig("127.0.0.1:1")))
	if err != nil {
		t.Fatal(err)
	}
	left, cancel := context.WithCancel(context.Background())
	cancel()
	release := make(chan struct{})
	ended := make(chan struct{})
	ch := svc.cache.sf.DoChan("mallory@lab.test\x00"+exchSPN, func() (*s4u.Ticket, error) {
		defer close(ended)
		<-release
		panic("unexpected KDC reply for mallory@lab.test")
	})
	if _, err := svc.cache.sf.Wait(left, ch); err == nil {
		t.Fatal("a caller whose context ended waited for the exchange")
	}
	close(release)
	<-ended
	// ended closes in the exchange's own deferred call, before the panic
	// reaches the recovery that logs and counts it: wait for the count.
	testpoll.Until(t, 10*time.Second, "the shared exchange's panic counted", func() bool {
		return testmetric.Sum(t, reader, telemetry.MetricBackgroundPanics, attribute.String(telemetry.AttrTask, telemetry.TaskTicketFetch)) == 1
	})
	svc.onTGTPanic(realm, "unexpected AS reply", nil)

	for task, want := range map[string]int64{telemetry.TaskTicketFetch: 1, telemetry.TaskTGTRefresh: 1} {
		if n := testmetric.Sum(t, reader, telemetry.MetricBackgroundPanics, attribute.String(telemetry.AttrTask, task)); n != want {
			t.Errorf("%s{task=%s} = %d, want %d", telemetry.MetricBackgroundPanics, task, n, want)
		}
	}
	log := logs.String()
	for _, want := range []string{"level=ERROR", "task=ticket_fetch", "upn=mallory@lab.test", "unexpected KDC reply for mallory@lab.test", "goroutine "} {
		if !strings.Contains(log, want) {
			t.Fatalf("log lacks %q:\n%s", want, log)
		}
	}
}

// lockedLog is a log buffer safe for the shared calls' goroutines.
type lockedLog = testlog.Buffer
