package refresh_test

import (
	"context"
	"crypto/x509"
	"errors"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmesh/segmesh/internal/testpoll"
	"github.com/segmesh/segmesh/pkg/crl"
	"github.com/segmesh/segmesh/pkg/crl/crltest"
	"github.com/segmesh/segmesh/pkg/crl/fetch"
	"github.com/segmesh/segmesh/pkg/crl/refresh"
	"github.com/segmesh/segmesh/pkg/crl/store"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// fakeClock is a Clock whose time moves only on Advance.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters map[*waiter]struct{}
}

type waiter struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock(now time.Time) *fakeClock {
	return &fakeClock{now: now, waiters: map[*waiter]struct{}{}}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) (<-chan time.Time, func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := &waiter{at: c.now.Add(d), ch: make(chan time.Time, 1)}
	if d <= 0 {
		w.ch <- c.now
		return w.ch, func() {}
	}
	c.waiters[w] = struct{}{}
	return w.ch, func() {
		c.mu.Lock()
		delete(c.waiters, w)
		c.mu.Unlock()
	}
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for w := range c.waiters {
		if !w.at.After(c.now) {
			w.ch <- c.now
			delete(c.waiters, w)
		}
	}
}

// nextWake returns how far the earliest waiter is, or false if none.
func (c *fakeClock) nextWake() (time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var best time.Duration
	found := false
	for w := range c.waiters {
		if d := w.at.Sub(c.now); !found || d < best {
			best, found = d, true
		}
	}
	return best, found
}

// waitFor polls cond until it holds, failing tb after 5 s (testpoll.Until).
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	testpoll.Until(tb, 5*time.Second, what, cond)
}

// cdp is a distribution point whose behaviour the test switches.
type cdp struct {
	srv      *httptest.Server
	body     atomic.Pointer[[]byte]
	mode     atomic.Value // "", "500", "huge"
	requests atomic.Int32
	ok200    atomic.Int32
	etag     atomic.Value
	gate     atomic.Pointer[chan struct{}] // when set, answers wait until it is closed
}

func newCDP(tb testing.TB) *cdp {
	tb.Helper()
	c := &cdp{}
	c.mode.Store("")
	c.etag.Store("")
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.requests.Add(1)
		if g := c.gate.Load(); g != nil {
			<-*g
		}
		switch c.mode.Load().(string) {
		case "500":
			http.Error(w, "down", http.StatusInternalServerError)
			return
		case "huge":
			_, _ = w.Write(make([]byte, 4096))
			return
		}
		b := c.body.Load()
		if b == nil {
			http.NotFound(w, r)
			return
		}
		etag := c.etag.Load().(string)
		if etag != "" {
			w.Header().Set("ETag", etag)
			if r.Header.Get("If-None-Match") == etag {
				w.WriteHeader(http.StatusNotModified)
				return
			}
		}
		c.ok200.Add(1)
		_, _ = w.Write(*b)
	}))
	tb.Cleanup(c.srv.Close)
	return c
}

func (c *cdp) serve(b []byte, etag string) {
	c.body.Store(&b)
	c.etag.Store(etag)
	c.mode.Store("")
}

func (c *cdp) url() string { return c.srv.URL + "/CertEnroll/Test%20CA.crl" }

type fixture struct {
	ca, other *crltest.CA
	cdp       *cdp
	clock     *fakeClock
	revoked   *x509.Certificate // serial 5
	good      *x509.Certificate // serial 6
	later     *x509.Certificate // serial 7, revoked after start
	results   *results
}

type results struct {
	mu   sync.Mutex
	list []string
}

func (r *results) add(_, result string, _ time.Duration) {
	r.mu.Lock()
	r.list = append(r.list, result)
	r.mu.Unlock()
}

func (r *results) last() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.list) == 0 {
		return ""
	}
	return r.list[len(r.list)-1]
}

func (r *results) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.list)
}

func newFixture(tb testing.TB) *fixture {
	tb.Helper()
	ca := crltest.NewCA(tb, "Test CA", t0)
	return &fixture{
		ca:      ca,
		other:   crltest.NewCA(tb, "Test CA", t0), // same name, other key
		cdp:     newCDP(tb),
		clock:   newFakeClock(t0),
		revoked: ca.Leaf(tb, big.NewInt(5), t0),
		good:    ca.Leaf(tb, big.NewInt(6), t0),
		later:   ca.Leaf(tb, big.NewInt(7), t0),
		results: &results{},
	}
}

func (f *fixture) crl(tb testing.TB, number int64, thisUpdate time.Time, serials ...int64) []byte {
	tb.Helper()
	var rv []crltest.Revoked
	for _, s := range serials {
		rv = append(rv, crltest.Revoked{Serial: big.NewInt(s), At: thisUpdate.Add(-time.Minute), Reason: 1})
	}
	return f.ca.CRL(tb, crltest.CRLOptions{Number: number, ThisUpdate: thisUpdate, NextUpdate: thisUpdate.Add(24 * time.Hour), Revoked: rv})
}

func (f *fixture) config(mod func(*refresh.Config)) refresh.Config {
	cfg := refresh.Config{
		URLs:     []string{f.cdp.url()},
		Interval: time.Hour,
		FailHard: true,
		Trusted:  func() []*x509.Certificate { return []*x509.Certificate{f.ca.Cert} },
		Fetcher:  &fetch.Fetcher{MaxBytes: 2048, Timeout: 5 * time.Second},
		Backoff:  refresh.Backoff{Initial: 10 * time.Second, Max: 40 * time.Second, Jitter: -1},
		Clock:    f.clock,
		Rand:     func() float64 { return 0.5 },
		Logger:   slog.New(slog.DiscardHandler),
		Hooks:    refresh.Hooks{OnFetch: f.results.add},
	}
	if mod != nil {
		mod(&cfg)
	}
	return cfg
}

func newRefresher(tb testing.TB, cfg refresh.Config) *refresh.Refresher {
	tb.Helper()
	r, err := refresh.New(cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return r
}

func revoked(tb testing.TB, r *refresh.Refresher, cert *x509.Certificate) bool {
	tb.Helper()
	rev, _, known := r.Set().IsRevoked(cert)
	if !known {
		tb.Fatalf("issuer unknown to the snapshot")
	}
	return rev
}

func TestNewRejectsBadURLs(t *testing.T) {
	f := newFixture(t)
	_, err := refresh.New(f.config(func(c *refresh.Config) {
		c.URLs = []string{"ldap:///CN=Test%20CA,CN=CDP", "http://ok/ca.crl", "file:///x.crl"}
	}))
	if err == nil || !strings.Contains(err.Error(), "ldap:///") || !strings.Contains(err.Error(), "file:///") {
		t.Fatalf("New = %v, want an error naming both bad URLs", err)
	}
	if _, err := refresh.New(refresh.Config{}); err == nil {
		t.Fatal("New without Trusted succeeded")
	}
}

func TestStartupFetch(t *testing.T) {
	tests := []struct {
		name      string
		failHard  bool
		up        bool
		cached    bool
		wantErr   bool
		wantReady bool
	}{
		{"up", true, true, false, false, true},
		{"down, fail hard, nothing stored", true, false, false, true, false},
		{"down, fail soft, nothing stored", false, false, false, false, false},
		{"down, fail hard, stored copy", true, false, true, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			st := store.New(t.TempDir())
			good := f.crl(t, 1, t0.Add(-time.Hour), 5)
			if tc.cached {
				if err := st.Save(store.Record{URL: f.cdp.url(), DER: good}); err != nil {
					t.Fatal(err)
				}
			}
			if tc.up {
				f.cdp.serve(good, "")
			} else {
				f.cdp.mode.Store("500")
			}
			r := newRefresher(t, f.config(func(c *refresh.Config) { c.FailHard = tc.failHard; c.Store = st }))
			err := r.StartupFetch(context.Background())
			if (err != nil) != tc.wantErr {
				t.Fatalf("StartupFetch = %v, want error %v", err, tc.wantErr)
			}
			if err != nil && (!strings.Contains(err.Error(), f.cdp.url()) || !strings.Contains(err.Error(), "500")) {
				t.Fatalf("error %q does not name the URL and the cause", err)
			}
			if (r.Ready() == nil) != tc.wantReady {
				t.Fatalf("Ready = %v, want ready %v", r.Ready(), tc.wantReady)
			}
			if r.Snapshot().Version() != 1 {
				t.Fatalf("version %d after start, want 1", r.Snapshot().Version())
			}
			if tc.wantReady && !revoked(t, r, f.revoked) {
				t.Fatal("serial 5 not revoked")
			}
		})
	}
}

func TestLastGoodSurvivesBadFetches(t *testing.T) {
	f := newFixture(t)
	f.cdp.serve(f.crl(t, 2, t0.Add(-time.Hour), 5), "")
	r := newRefresher(t, f.config(nil))
	if err := r.StartupFetch(context.Background()); err != nil {
		t.Fatal(err)
	}
	wrongSigner := f.other.CRL(t, crltest.CRLOptions{Number: 3, ThisUpdate: t0})
	tests := []struct {
		name  string
		setup func()
		want  string
	}{
		{"garbage", func() { f.cdp.serve([]byte("<html>maintenance</html>"), "") }, "malformed"},
		{"huge", func() { f.cdp.mode.Store("huge") }, "too_large"},
		{"wrong signer", func() { f.cdp.serve(wrongSigner, "") }, "untrusted"},
		{"older CRL", func() { f.cdp.serve(f.crl(t, 1, t0.Add(-2*time.Hour)), "") }, "older"},
		{"server error", func() { f.cdp.mode.Store("500") }, "fetch"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.setup()
			r.RefreshNow(context.Background())
			if got := f.results.last(); got != tc.want {
				t.Fatalf("result %q, want %q", got, tc.want)
			}
			if !revoked(t, r, f.revoked) || revoked(t, r, f.good) {
				t.Fatal("last good CRL not in force")
			}
			st := r.Status()[0]
			if st.LastError == nil || st.Failures == 0 || st.Entries != 1 {
				t.Fatalf("status %+v", st)
			}
			if r.Snapshot().Version() != 1 {
				t.Fatalf("a rejected CRL published version %d", r.Snapshot().Version())
			}
		})
	}
}

func TestRevokedAfterStartAndNotModified(t *testing.T) {
	f := newFixture(t)
	f.cdp.serve(f.crl(t, 1, t0.Add(-time.Hour), 5), `"one"`)
	r := newRefresher(t, f.config(nil))
	snaps, cancel := r.Subscribe()
	defer cancel()
	if err := r.StartupFetch(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := <-snaps; s.Version() != 1 {
		t.Fatalf("first snapshot version %d", s.Version())
	}
	// Unchanged: a 304, no new version.
	r.RefreshNow(context.Background())
	if f.results.last() != refresh.ResultNotModified || f.cdp.ok200.Load() != 1 {
		t.Fatalf("result %q after %d full downloads, want a 304", f.results.last(), f.cdp.ok200.Load())
	}
	select {
	case s := <-snaps:
		t.Fatalf("unchanged CRL published version %d", s.Version())
	default:
	}
	// Serial 7 revoked after start.
	if revoked(t, r, f.later) {
		t.Fatal("serial 7 revoked too early")
	}
	f.cdp.serve(f.crl(t, 2, t0, 5, 7), `"two"`)
	r.RefreshNow(context.Background())
	s := <-snaps
	if s.Version() != 2 {
		t.Fatalf("version %d, want 2", s.Version())
	}
	if rev, info, _ := s.IsRevoked(f.later); !rev || info.Reason != 1 || info.Source != f.cdp.url() {
		t.Fatalf("serial 7 after refresh: revoked %v info %+v", rev, info)
	}
	if !revoked(t, r, f.later) {
		t.Fatal("the Set did not get the new snapshot")
	}
}

func TestRestartUsesStoredCRL(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	f.cdp.serve(f.crl(t, 4, t0.Add(-time.Hour), 5), `"four"`)
	first := newRefresher(t, f.config(func(c *refresh.Config) { c.Store = store.New(dir) }))
	if err := first.StartupFetch(context.Background()); err != nil {
		t.Fatal(err)
	}

	// Restart while the distribution point is down, FailHard on.
	f.cdp.mode.Store("500")
	second := newRefresher(t, f.config(func(c *refresh.Config) { c.Store = store.New(dir) }))
	if err := second.StartupFetch(context.Background()); err != nil {
		t.Fatalf("restart with a stored copy: %v", err)
	}
	if !revoked(t, second, f.revoked) || revoked(t, second, f.good) {
		t.Fatal("stored CRL not enforced after restart")
	}
	if st := second.Status()[0]; st.LastError == nil || st.Number != "4" || !st.FetchedAt.Equal(t0) {
		t.Fatalf("status after restart %+v", st)
	}

	// Back up: the stored ETag makes it a 304.
	f.cdp.mode.Store("")
	before := f.cdp.ok200.Load()
	second.RefreshNow(context.Background())
	if f.results.last() != refresh.ResultNotModified || f.cdp.ok200.Load() != before {
		t.Fatalf("result %q, want a 304 thanks to the stored ETag", f.results.last())
	}

	// A stored copy the trust store no longer vouches for is not used.
	third := newRefresher(t, f.config(func(c *refresh.Config) {
		c.Store = store.New(dir)
		c.Trusted = func() []*x509.Certificate { return []*x509.Certificate{f.other.Cert} }
	}))
	f.cdp.mode.Store("500")
	if err := third.StartupFetch(context.Background()); err == nil {
		t.Fatal("a stored CRL of an untrusted issuer satisfied fail-hard")
	}
}

func TestStaleThenFailClosed(t *testing.T) {
	for _, failClosed := range []bool{false, true} {
		t.Run(map[bool]string{false: "fail open", true: "fail closed"}[failClosed], func(t *testing.T) {
			f := newFixture(t)
			// nextUpdate is t0+1h; the refresh interval is a day.
			f.cdp.serve(f.ca.CRL(t, crltest.CRLOptions{Number: 1, ThisUpdate: t0.Add(-time.Hour), NextUpdate: t0.Add(time.Hour),
				Revoked: []crltest.Revoked{{Serial: big.NewInt(5), At: t0.Add(-2 * time.Hour)}}}), "")
			r := newRefresher(t, f.config(func(c *refresh.Config) {
				c.Interval = 24 * time.Hour
				c.FailClosedOnStale = failClosed
			}))
			snaps, cancel := r.Subscribe()
			defer cancel()
			ctx, stop := context.WithCancel(context.Background())
			done := make(chan error, 1)
			if err := r.StartupFetch(ctx); err != nil {
				t.Fatal(err)
			}
			<-snaps
			go func() { done <- r.Run(ctx) }()
			waitFor(t, "the timer", func() bool { _, ok := f.clock.nextWake(); return ok })
			d, _ := f.clock.nextWake()
			if d != time.Hour+time.Second {
				t.Fatalf("next wake in %v, want at nextUpdate+1s", d)
			}
			if rev, info, _ := r.Set().IsRevoked(f.good); rev || info.Stale {
				t.Fatalf("before nextUpdate: revoked %v stale %v", rev, info.Stale)
			}
			f.clock.Advance(d)
			s := <-snaps
			rev, info, known := s.IsRevoked(f.good)
			if !known || !info.Stale || rev != failClosed || info.FailedClosed != failClosed {
				t.Fatalf("after nextUpdate: revoked %v info %+v", rev, info)
			}
			if rev, _, _ := s.IsRevoked(f.revoked); !rev {
				t.Fatal("listed serial no longer revoked when stale")
			}
			if !r.Status()[0].Stale {
				t.Fatal("status not stale")
			}
			stop()
			if err := <-done; err != nil {
				t.Fatalf("Run = %v", err)
			}
		})
	}
}

func TestRunBackoff(t *testing.T) {
	f := newFixture(t)
	f.cdp.mode.Store("500")
	r := newRefresher(t, f.config(func(c *refresh.Config) { c.FailHard = false; c.Interval = 35 * time.Second }))
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }() // Run does the startup fetch itself
	// Waits after failures 1, 2, 3, 4: 10 s, 20 s, then 40 s capped by Max,
	// then capped by the 35 s interval.
	for i, want := range []time.Duration{10 * time.Second, 20 * time.Second, 35 * time.Second, 35 * time.Second} {
		waitFor(t, "the retry timer", func() bool { _, ok := f.clock.nextWake(); return ok && f.results.count() == i+1 })
		if d, _ := f.clock.nextWake(); d != want {
			t.Fatalf("wait after failure %d = %v, want %v", i+1, d, want)
		}
		f.clock.Advance(want)
	}
	// Recovery: back to the regular interval.
	waitFor(t, "the fifth attempt", func() bool { return f.results.count() == 5 })
	f.cdp.serve(f.crl(t, 1, t0), "")
	waitFor(t, "the retry timer", func() bool { _, ok := f.clock.nextWake(); return ok })
	d, _ := f.clock.nextWake()
	f.clock.Advance(d)
	waitFor(t, "a good CRL", func() bool { return r.Ready() == nil })
	waitFor(t, "the refresh timer", func() bool { _, ok := f.clock.nextWake(); return ok && f.results.count() == 6 })
	if d, _ := f.clock.nextWake(); d != 35*time.Second {
		t.Fatalf("wait after success %v, want the interval", d)
	}
	if st := r.Status()[0]; st.Failures != 0 || st.LastError != nil {
		t.Fatalf("status after recovery %+v", st)
	}
	stop()
	<-done
}

func TestBackoffDelay(t *testing.T) {
	b := refresh.Backoff{Initial: time.Second, Max: 8 * time.Second, Jitter: 0.5}
	tests := []struct {
		failures int
		rnd      float64
		want     time.Duration
	}{
		{1, 0, time.Second},
		{2, 0, 2 * time.Second},
		{3, 0.5, 3 * time.Second},
		{4, 0.999999, 4*time.Second + 4*time.Microsecond},
		{10, 0, 8 * time.Second},
		{1000, 0, 8 * time.Second},
	}
	for _, tc := range tests {
		if got := b.Delay(tc.failures, tc.rnd); got != tc.want {
			t.Errorf("Delay(%d, %v) = %v, want %v", tc.failures, tc.rnd, got, tc.want)
		}
	}
	if got := (refresh.Backoff{}).Delay(1, 0); got != 30*time.Second {
		t.Errorf("default first delay %v", got)
	}
	if got := (refresh.Backoff{}).Delay(1, 1); got != 24*time.Second {
		t.Errorf("default jitter: %v, want 24s", got)
	}
}

func TestDerivedDistributionPoints(t *testing.T) {
	f := newFixture(t)
	f.cdp.serve(f.crl(t, 1, t0, 5), "")
	leaf := f.ca.Leaf(t, big.NewInt(99), t0, "ldap:///CN=Test%20CA,CN=CDP", f.cdp.url())
	if got := refresh.CertificateCDPs(leaf); len(got) != 1 || got[0] != f.cdp.url() {
		t.Fatalf("CertificateCDPs = %v", got)
	}
	r := newRefresher(t, f.config(func(c *refresh.Config) { c.URLs = nil }))
	if err := r.StartupFetch(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, _, known := r.Set().IsRevoked(f.revoked); known {
		t.Fatal("issuer known without any URL")
	}
	if n := r.AddDerived(refresh.CertificateCDPs(leaf)...); n != 1 {
		t.Fatalf("AddDerived = %d", n)
	}
	if n := r.AddDerived(f.cdp.url()); n != 0 {
		t.Fatalf("second AddDerived = %d, want 0", n)
	}
	r.RefreshNow(context.Background())
	if !revoked(t, r, f.revoked) || !r.Status()[0].Derived {
		t.Fatal("derived URL not used")
	}
	var many []string
	for i := range refresh.MaxDerived + 10 {
		many = append(many, f.cdp.srv.URL+"/x"+big.NewInt(int64(i)).String()+".crl")
	}
	if n := r.AddDerived(many...); n != refresh.MaxDerived-1 {
		t.Fatalf("AddDerived over the cap added %d, want %d", n, refresh.MaxDerived-1)
	}
}

func TestSubscribeCancel(t *testing.T) {
	f := newFixture(t)
	f.cdp.serve(f.crl(t, 1, t0), "")
	r := newRefresher(t, f.config(nil))
	snaps, cancel := r.Subscribe()
	cancel()
	cancel()
	if _, ok := <-snaps; ok {
		t.Fatal("channel open after cancel")
	}
	if err := r.StartupFetch(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Publishing after the cancel must not send on the closed channel.
	if r.Snapshot().Version() != 1 {
		t.Fatalf("version %d", r.Snapshot().Version())
	}
}

func TestHooksOnPublish(t *testing.T) {
	f := newFixture(t)
	f.cdp.serve(f.crl(t, 1, t0, 5), "")
	var got []*crl.Snapshot
	r := newRefresher(t, f.config(func(c *refresh.Config) {
		c.Hooks.OnPublish = func(s *crl.Snapshot) { got = append(got, s) }
	}))
	if err := r.StartupFetch(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Version() != 1 || len(got[0].Indexes()) != 1 || got[0].Indexes()[0].Len() != 1 {
		t.Fatalf("OnPublish got %v", got)
	}
}

func TestStartupFetchCancelled(t *testing.T) {
	f := newFixture(t)
	f.cdp.serve(f.crl(t, 1, t0, 5), "")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := newRefresher(t, f.config(nil))
	if err := r.StartupFetch(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("StartupFetch with a cancelled context = %v, want context.Canceled", err)
	}
	soft := newRefresher(t, f.config(func(c *refresh.Config) { c.FailHard = false }))
	if err := soft.StartupFetch(ctx); err != nil {
		t.Fatalf("fail soft: %v", err)
	}
	if st := soft.Status()[0]; st.LastError == nil || st.Failures != 1 {
		t.Fatalf("cancelled attempt not recorded: %+v", st)
	}
}

func TestPEMDistributionPointStoredAsDER(t *testing.T) {
	f := newFixture(t)
	der := f.crl(t, 1, t0, 5)
	f.cdp.serve(crltest.PEM(der), "")
	st := store.New(t.TempDir())
	r := newRefresher(t, f.config(func(c *refresh.Config) { c.Store = st }))
	if err := r.StartupFetch(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !revoked(t, r, f.revoked) {
		t.Fatal("PEM CRL not used")
	}
	rec, err := st.Load(f.cdp.url())
	if err != nil || string(rec.DER) != string(der) {
		t.Fatalf("stored %d bytes (%v), want the DER (%d bytes)", len(rec.DER), err, len(der))
	}
}
