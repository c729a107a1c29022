package trust

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmesh/segmesh/internal/testlog"
	"github.com/segmesh/segmesh/internal/testpki"
)

// syncBuffer is a log sink safe for the Run goroutine.
type syncBuffer = testlog.Buffer

type fakeTicker struct {
	c       chan time.Time
	stopped atomic.Bool
}

func (f *fakeTicker) Chan() <-chan time.Time { return f.c }
func (f *fakeTicker) Stop()                  { f.stopped.Store(true) }

type outcome struct {
	ok  bool
	err error
}

// reloadFixture is a Reloader over a PEM trust store in a temp dir.
type reloadFixture struct {
	dir      string
	r        *Reloader
	logs     *syncBuffer
	outcomes *[]outcome
}

func newReloadFixture(t *testing.T, files map[string][]byte, spec Spec, opts ReloaderOptions) reloadFixture {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		writeFile(t, filepath.Join(dir, name), data)
	}
	spec.BaseDir = dir
	logs := &syncBuffer{}
	var outcomes []outcome
	opts.Spec = spec
	opts.Logger = slog.New(slog.NewTextHandler(logs, nil))
	opts.Now = func() time.Time { return testNow }
	opts.OnReload = func(ok bool, err error) { outcomes = append(outcomes, outcome{ok, err}) }
	r, err := NewReloader(opts)
	if err != nil {
		t.Fatal(err)
	}
	return reloadFixture{dir: dir, r: r, logs: logs, outcomes: &outcomes}
}

func trusts(t *testing.T, s *Store, ca *testpki.Cert) bool {
	t.Helper()
	_, err := VerifyClientChain(s, chainOf(ca.Device(t, "probe")), testNow)
	return err == nil
}

func TestReloaderPoll(t *testing.T) {
	oldCA, newCA := newCA(t, "Old CA"), newCA(t, "New CA")
	f := newReloadFixture(t, map[string][]byte{"ca.pem": pemOf(oldCA)}, Spec{TrustStorePath: "ca.pem"}, ReloaderOptions{})
	first := f.r.Store()
	if !trusts(t, first, oldCA) || trusts(t, first, newCA) {
		t.Fatal("initial store does not hold exactly the old CA")
	}

	if tried, err := f.r.Poll(); tried || err != nil {
		t.Fatalf("Poll without a change = %v, %v", tried, err)
	}

	// Rewrite the file: both CAs (a CA renewal).
	writeFile(t, filepath.Join(f.dir, "ca.pem"), pemOf(oldCA, newCA))
	if tried, err := f.r.Poll(); !tried || err != nil {
		t.Fatalf("Poll after a rewrite = %v, %v", tried, err)
	}
	second := f.r.Store()
	if second == first || !trusts(t, second, oldCA) || !trusts(t, second, newCA) {
		t.Fatal("store not replaced by one trusting both CAs")
	}

	// A broken file keeps the previous store and says so, once.
	writeFile(t, filepath.Join(f.dir, "ca.pem"), []byte("-----BEGIN CERTIFICATE-----\ntruncated"))
	tried, err := f.r.Poll()
	if !tried || err == nil {
		t.Fatalf("Poll of a broken file = %v, %v", tried, err)
	}
	if f.r.Store() != second {
		t.Fatal("a broken file replaced the store")
	}
	if !strings.Contains(f.logs.String(), "previous trust store still in use") {
		t.Fatalf("log lacks the still-in-use message:\n%s", f.logs)
	}
	if tried, _ := f.r.Poll(); tried {
		t.Fatal("the same broken content was tried again")
	}

	// A missing file likewise.
	if err := f.r.Update(Spec{TrustStorePath: "gone.pem", BaseDir: f.dir}); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Update to a missing file: %v", err)
	}
	if f.r.Store() != second {
		t.Fatal("a missing file replaced the store")
	}

	// Fixing the file (the Spec from Update is kept) is picked up by the next poll.
	writeFile(t, filepath.Join(f.dir, "gone.pem"), pemOf(newCA))
	if tried, err := f.r.Poll(); !tried || err != nil {
		t.Fatalf("Poll after the fix = %v, %v", tried, err)
	}
	if s := f.r.Store(); trusts(t, s, oldCA) || !trusts(t, s, newCA) {
		t.Fatal("store after the fix does not hold exactly the new CA")
	}

	st := f.r.Stats()
	if st.Successes != 2 || st.Failures != 2 || st.LastError != nil || !st.LastAttempt.Equal(testNow) {
		t.Fatalf("stats %+v, want 2 successes, 2 failures, no last error", st)
	}
	want := []bool{true, false, false, true}
	if len(*f.outcomes) != len(want) {
		t.Fatalf("OnReload called %d times, want %d", len(*f.outcomes), len(want))
	}
	for i, o := range *f.outcomes {
		if o.ok != want[i] || (o.err == nil) != o.ok {
			t.Errorf("OnReload %d = %v, %v; want ok=%v", i, o.ok, o.err, want[i])
		}
	}
}

func TestReloaderReloadForced(t *testing.T) {
	ca := newCA(t, "CA")
	f := newReloadFixture(t, map[string][]byte{"ca.pem": pemOf(ca)}, Spec{TrustStorePath: "ca.pem"}, ReloaderOptions{})
	before := f.r.Store()
	if err := f.r.Reload(); err != nil {
		t.Fatal(err)
	}
	if f.r.Store() == before || f.r.Stats().Successes != 1 {
		t.Fatal("Reload did not build a new store")
	}
	if !strings.Contains(f.logs.String(), "trust store reloaded") || !strings.Contains(f.logs.String(), "trigger=reload") {
		t.Fatalf("log:\n%s", f.logs)
	}
}

func TestReloaderPFXPasscodeNotLogged(t *testing.T) {
	ca := newCA(t, "CA")
	const pass = "pfx-Passc0de"
	f := newReloadFixture(t, map[string][]byte{"ca.pfx": opensslPFX(t, pass, []*testpki.Cert{ca})},
		Spec{TrustStorePath: "ca.pfx", Passcode: pass}, ReloaderOptions{})
	if err := f.r.Update(Spec{TrustStorePath: "ca.pfx", Passcode: pass + "-wrong", BaseDir: f.dir}); err == nil {
		t.Fatal("wrong passcode accepted")
	}
	if !trusts(t, f.r.Store(), ca) {
		t.Fatal("old store lost")
	}
	if logs := f.logs.String(); strings.Contains(logs, pass) || !strings.Contains(logs, KeyPasscode) {
		t.Fatalf("log shows the passcode or lacks the key:\n%s", logs)
	}
}

func TestReloaderRun(t *testing.T) {
	oldCA, newCA := newCA(t, "Old CA"), newCA(t, "New CA")
	tick := &fakeTicker{c: make(chan time.Time)}
	var interval time.Duration
	f := newReloadFixture(t, map[string][]byte{"ca.pem": pemOf(oldCA)}, Spec{TrustStorePath: "ca.pem"}, ReloaderOptions{
		PollInterval: 5 * time.Second,
		NewTicker:    func(d time.Duration) Ticker { interval = d; return tick },
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.r.Run(ctx) }()

	writeFile(t, filepath.Join(f.dir, "ca.pem"), pemOf(newCA))
	// The channel is unbuffered and Run polls between receives: once the second tick is
	// taken, the poll of the first has finished.
	tick.c <- testNow
	tick.c <- testNow
	if !trusts(t, f.r.Store(), newCA) {
		t.Fatal("Run did not reload after a tick")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if !tick.stopped.Load() || interval != 5*time.Second {
		t.Fatalf("ticker stopped %v, interval %v", tick.stopped.Load(), interval)
	}
}

func TestReloaderRunWithoutPolling(t *testing.T) {
	ca := newCA(t, "CA")
	f := newReloadFixture(t, map[string][]byte{"ca.pem": pemOf(ca)}, Spec{TrustStorePath: "ca.pem"}, ReloaderOptions{
		PollInterval: -1,
		NewTicker:    func(time.Duration) Ticker { t.Error("ticker made with polling off"); return nil },
	})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := f.r.Run(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestNewReloaderFailsOnBrokenStore(t *testing.T) {
	_, err := NewReloader(ReloaderOptions{Spec: Spec{TrustStorePath: "a.pem, b.pfx"}})
	var p *Problem
	if !errors.As(err, &p) || p.Key != KeyPath {
		t.Fatalf("NewReloader = %v, want a clientCertTrustStorePath problem", err)
	}
}

// TestReloaderPrepare: Prepare loads without putting anything in force;
// commit switches spec and store; a failed Prepare changes neither (the
// files of the refused spec are not polled afterwards).
func TestReloaderPrepare(t *testing.T) {
	oldCA, newCA := newCA(t, "Old CA"), newCA(t, "New CA")
	cases := []struct {
		name    string
		path    string
		files   map[string][]byte
		wantErr bool
	}{
		{name: "good file", path: "new.pem", files: map[string][]byte{"new.pem": pemOf(newCA)}},
		{name: "missing file", path: "gone.pem", wantErr: true},
		{name: "broken file", path: "bad.pem", files: map[string][]byte{"bad.pem": []byte("-----BEGIN CERTIFICATE-----\ntruncated")}, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newReloadFixture(t, map[string][]byte{"ca.pem": pemOf(oldCA)}, Spec{TrustStorePath: "ca.pem"}, ReloaderOptions{})
			for name, data := range tc.files {
				writeFile(t, filepath.Join(f.dir, name), data)
			}
			before := f.r.Store()
			commit, err := f.r.Prepare(Spec{TrustStorePath: tc.path, BaseDir: f.dir})
			if f.r.Store() != before {
				t.Fatal("Prepare put a store in force before commit")
			}
			if tc.wantErr {
				if err == nil {
					t.Fatal("Prepare accepted it")
				}
				// The refused spec is not the one polled: its file appearing changes nothing.
				writeFile(t, filepath.Join(f.dir, tc.path), pemOf(newCA))
				if tried, _ := f.r.Poll(); tried || f.r.Store() != before {
					t.Fatal("a refused Prepare's spec was kept and polled")
				}
				if st := f.r.Stats(); st.Failures != 1 || st.LastError == nil {
					t.Errorf("stats %+v, want the failure counted", st)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			commit()
			if s := f.r.Store(); trusts(t, s, oldCA) || !trusts(t, s, newCA) {
				t.Fatal("after commit the store does not hold exactly the new CA")
			}
			// The committed spec is the one polled now.
			writeFile(t, filepath.Join(f.dir, tc.path), pemOf(oldCA, newCA))
			if tried, err := f.r.Poll(); !tried || err != nil || !trusts(t, f.r.Store(), oldCA) {
				t.Fatalf("Poll of the committed spec's file = %v, %v", tried, err)
			}
		})
	}
}
