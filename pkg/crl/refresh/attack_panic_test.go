package refresh_test

import (
	"context"
	"crypto/x509"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmesh/segmesh/internal/testlog"
	"github.com/segmesh/segmesh/pkg/crl"
	"github.com/segmesh/segmesh/pkg/crl/refresh"
)

// lockedLog is a log buffer safe for the refresher's goroutines.
type lockedLog = testlog.Buffer

// TestAttackPanicInACRLFetch: each distribution point is fetched in a
// goroutine of its own (fetchAll's wg.Go), where nothing recovered a
// panic: a CRL whose check panics (a parser meeting bytes it did not
// expect; here the trust callback it calls) ended the process, every role
// in it. This crashed the test binary on main. Now the panic counts as a
// failed fetch of that URL, as any failed fetch does: the last good CRL
// stays in force, the URL's status shows the failure (so staleness shows
// on /readyz and /status when it lasts), the fetch metric's hook gets the
// result "panic", the panic is logged at error level with its stack (never
// in the status), and the next refresh fetches again.
func TestAttackPanicInACRLFetch(t *testing.T) {
	f := newFixture(t)
	f.cdp.serve(f.crl(t, 1, t0.Add(-time.Hour), 5), "")
	var armed atomic.Bool
	logs := &lockedLog{}
	r := newRefresher(t, f.config(func(c *refresh.Config) {
		c.Trusted = func() []*x509.Certificate {
			if armed.Load() {
				panic("unexpected CRL bytes at serial 7")
			}
			return []*x509.Certificate{f.ca.Cert}
		}
		c.Logger = slog.New(slog.NewTextHandler(logs, nil))
	}))
	if err := r.StartupFetch(context.Background()); err != nil {
		t.Fatal(err)
	}

	armed.Store(true)
	f.cdp.serve(f.crl(t, 2, t0, 5, 7), "")
	r.RefreshNow(context.Background())
	failedOnPanic(t, f, r, logs, "serial 7", "level=ERROR", "panic", "unexpected CRL bytes at serial 7", "goroutine ", f.cdp.url())

	// The refresh goes on: the next one puts the new CRL in force.
	armed.Store(false)
	recoversAfterPanic(t, f, r)
}

// failedOnPanic checks the refresh that just ran failed on a panic: the
// result "panic", the last good CRL (serial 5, not 7) in force, one failure
// of kind panic in the status without value (the panic's text), and a log
// with every one of logHas.
func failedOnPanic(t testing.TB, f *fixture, r *refresh.Refresher, logs *lockedLog, value string, logHas ...string) {
	t.Helper()
	if got := f.results.last(); got != "panic" {
		t.Fatalf("result %q, want panic", got)
	}
	if !revoked(t, r, f.revoked) || revoked(t, r, f.later) {
		t.Fatal("the last good CRL is not the one in force after the panic")
	}
	st := r.Status()[0]
	var ce *crl.Error
	if st.Failures != 1 || !errors.As(st.LastError, &ce) || ce.Kind != crl.KindPanic || strings.Contains(st.LastError.Error(), value) {
		t.Fatalf("status after the panic: failures %d, last error %v; want one failure of kind panic without the panic value", st.Failures, st.LastError)
	}
	log := logs.String()
	for _, want := range logHas {
		if !strings.Contains(log, want) {
			t.Fatalf("log lacks %q:\n%s", want, log)
		}
	}
}

// recoversAfterPanic serves CRL #2 (serials 5 and 7), refreshes, and checks
// it is put in force and the status is clean again.
func recoversAfterPanic(t testing.TB, f *fixture, r *refresh.Refresher) {
	t.Helper()
	f.cdp.serve(f.crl(t, 2, t0, 5, 7), "")
	r.RefreshNow(context.Background())
	if got := f.results.last(); got != refresh.ResultOK {
		t.Fatalf("result after the panic %q, want %q", got, refresh.ResultOK)
	}
	if !revoked(t, r, f.later) {
		t.Fatal("serial 7 not revoked after the next refresh")
	}
	if st := r.Status()[0]; st.Failures != 0 || st.LastError != nil {
		t.Fatalf("status after recovering: failures %d, last error %v", st.Failures, st.LastError)
	}
}

// TestAttackPanicInACRLCommit: commit, which puts an attempt's outcome in
// force under the refresher's lock, ran in the URL's fetch goroutine
// without the recovery the fetch has (guardedAttempt): a panic there ended
// the process with every role in it, the lock held (this test crashed the
// test binary on main). Now it counts as a failed attempt of kind panic,
// once: the source is put back as it was before commit, so the last good
// CRL stays in force (a new CRL half committed is not); the status shows
// one failure without the panic value; OnFetch gets "panic"; the panic is
// logged at error level with its stack; the lock is free (the status
// reads it) and the next refresh commits.
func TestAttackPanicInACRLCommit(t *testing.T) {
	tests := []struct {
		name string
		msg  string // the log line of commit that panics
		next []byte // what the distribution point serves when it does
	}{
		{"a new CRL put in force", "crl updated", nil},
		{"a failed fetch", "crl refresh failed", []byte("not a CRL")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.cdp.serve(f.crl(t, 1, t0.Add(-time.Hour), 5), "")
			var armed atomic.Bool
			logs := &lockedLog{}
			r := newRefresher(t, f.config(func(c *refresh.Config) {
				c.Logger = slog.New(testlog.PanicOn{Handler: slog.NewTextHandler(logs, nil), Prefix: tc.msg, Value: "unexpected value committing ", Armed: &armed})
			}))
			if err := r.StartupFetch(context.Background()); err != nil {
				t.Fatal(err)
			}

			armed.Store(true)
			next := tc.next
			if next == nil {
				next = f.crl(t, 2, t0, 5, 7)
			}
			f.cdp.serve(next, "")
			r.RefreshNow(context.Background())
			failedOnPanic(t, f, r, logs, "unexpected value", "level=ERROR", "crl commit caused a panic", "unexpected value committing", "goroutine ", f.cdp.url())

			armed.Store(false)
			recoversAfterPanic(t, f, r)
		})
	}
}
