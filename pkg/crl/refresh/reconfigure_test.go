package refresh_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/segmesh/segmesh/pkg/crl/refresh"
)

// statusOf returns the status of url, and whether it is listed.
func statusOf(r *refresh.Refresher, url string) (refresh.SourceStatus, bool) {
	for _, s := range r.Status() {
		if s.URL == url {
			return s, true
		}
	}
	return refresh.SourceStatus{}, false
}

// TestReconfigureNeverUnrevokes changes the distribution points of a
// running refresher step by step. A new URL serving an older CRL of the
// same CA does not roll it back; a removed URL's last CRL stays in force
// (serial 5 stays revoked) until a configured one gives a newer CRL of its
// issuer, or forever when nothing replaces it; a removed URL that never
// gave a CRL leaves readiness; a URL segmesh cannot fetch is refused with
// nothing changed; a shorter interval brings the next attempt forward.
func TestReconfigureNeverUnrevokes(t *testing.T) {
	f := newFixture(t)
	a, b, c := f.cdp, newCDP(t), newCDP(t)
	a.serve(f.crl(t, 2, t0.Add(-time.Hour), 5), "")
	b.serve(f.crl(t, 1, t0.Add(-2*time.Hour)), "") // older, without 5
	r := newRefresher(t, f.config(nil))
	if err := r.StartupFetch(context.Background()); err != nil {
		t.Fatal(err)
	}
	apply := func(urls []string, interval time.Duration) {
		t.Helper()
		commit, err := r.Reconfigure(urls, interval)
		if err != nil {
			t.Fatalf("Reconfigure(%v): %v", urls, err)
		}
		commit()
		r.RefreshNow(context.Background())
	}

	apply([]string{b.url()}, time.Hour)
	if !revoked(t, r, f.revoked) {
		t.Fatal("the new URL's older CRL un-revoked serial 5")
	}
	if st, ok := statusOf(r, a.url()); !ok || !st.Retired {
		t.Fatalf("the removed URL's status: %+v listed %v, want retired and kept", st, ok)
	}
	if n := a.requests.Load(); n != 1 {
		t.Errorf("the removed URL was fetched %d times, want only at the start", n)
	}

	b.serve(f.crl(t, 3, t0), "") // newer: 5 is genuinely not revoked any more
	r.RefreshNow(context.Background())
	if revoked(t, r, f.revoked) {
		t.Fatal("the configured URL's newer CRL is not in force")
	}
	if _, ok := statusOf(r, a.url()); ok {
		t.Error("the retired URL stays listed after a newer CRL of its issuer superseded it")
	}

	c.mode.Store("500")
	apply([]string{b.url(), c.url()}, time.Hour)
	if err := r.Ready(); err == nil || !strings.Contains(err.Error(), c.url()) {
		t.Fatalf("Ready with a new URL never fetched = %v, want it named", err)
	}
	apply([]string{b.url()}, 10*time.Minute)
	if err := r.Ready(); err != nil {
		t.Fatalf("Ready after removing the URL that never gave a CRL: %v", err)
	}
	if st, _ := statusOf(r, b.url()); st.NextAttempt.After(f.clock.Now().Add(10 * time.Minute)) {
		t.Errorf("next attempt %v, want within the new 10-minute interval of %v", st.NextAttempt, f.clock.Now())
	}

	if _, err := r.Reconfigure([]string{"ldap:///CN=Test%20CA,CN=CDP"}, time.Hour); err == nil {
		t.Fatal("Reconfigure accepted an ldap:// distribution point")
	}
	if _, ok := statusOf(r, b.url()); !ok {
		t.Fatal("a refused Reconfigure changed the sources")
	}

	b.serve(f.crl(t, 4, t0.Add(time.Minute), 5), "")
	r.RefreshNow(context.Background())
	apply(nil, time.Hour) // every URL removed
	if !revoked(t, r, f.revoked) {
		t.Fatal("removing the last URL made the revoked serial 5 valid")
	}
}
