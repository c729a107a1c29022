package refresh_test

import (
	"context"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"

	"github.com/segmesh/segmesh/pkg/crl"
	"github.com/segmesh/segmesh/pkg/crl/refresh"
	"github.com/segmesh/segmesh/pkg/crl/store"
)

// TestAttackLearntNewestThenRestart: with segmesh.crl.useCertificateCdps
// on, the configured distribution point a is a mirror held at X3 (serial 5
// not listed: a mirror lagging, or whoever sits on its path serving the
// older, genuinely signed X3), and a certificate names b, which gives X5
// (serial 5 revoked): b is learnt and X5 is in force. A restart forgets
// URLs learnt from certificates, and X5 was held only in b's record, which
// is never loaded again: a's X3 decides serial 5, good (failed on main).
// The certificate names X, which X3 covers, so nothing learns b again. X5
// is now kept on disk (kept/) as the newest of its partition, shown on
// /status (LearntKept, KeptFile) before and after the restart.
func TestAttackLearntNewestThenRestart(t *testing.T) {
	k := newKeptFixture(t)
	a, b := k.f.cdp.url(), k.b.url()
	k.f.cdp.serve(k.part(t, k.dpX, 3), "")
	k.b.serve(k.part(t, k.dpX, 5, 5), "")
	k.restartWith(t, true, a)
	k.want(t, "X3 at a", crl.Good)
	if n := k.r.AddDerived(b); n != 1 {
		t.Fatalf("AddDerived(b) = %d; want 1", n)
	}
	k.r.RefreshNow(context.Background())
	k.want(t, "X5 learnt at b", crl.Revoked)
	file := learntKeptFile(k.r, b)
	if file == "" {
		t.Errorf("X5 learnt at b, the newest of X: no LearntKept status with a kept file: %+v", k.r.Status())
	}
	k.down()
	k.restartWith(t, true, a)
	if d := k.leaf(); d.Verdict == crl.Good || !d.Refused {
		t.Fatalf("after a restart: serial 5 %v refused %v (from %q); X5 was in force and nothing newer of X exists", d.Verdict, d.Refused, d.Info.Source)
	}
	if got := learntKeptFile(k.r, b); got != file {
		t.Errorf("after a restart: LearntKept file %q; want %q", got, file)
	}
	if err := k.r.Ready(); err != nil {
		t.Errorf("the kept X5 holds readiness back: %v", err)
	}
}

// learntKeptFile returns the kept file of the CRL learnt at url kept on
// disk; "" if none is in force.
func learntKeptFile(r *refresh.Refresher, url string) string {
	for _, st := range r.Status() {
		if st.URL == url && st.LearntKept {
			return st.KeptFile
		}
	}
	return ""
}

// TestAttackConfigEditedWhileDown: the configuration is edited while the
// process is down, so no reload retires anything: a distribution point b
// that gave X5 (serial 5 revoked) is removed, or replaced by a mirror c
// held at X3. b's record is on disk but never loaded again, and a's (or
// c's) X3 decided serial 5: good (failed on main). Every CRL recorded or
// kept on disk is the floor of its issuer and partition at the start,
// whatever the new configuration lists: X5 is put in force and kept
// (kept/), and the mirror's X3 is accepted beside it (it adds nothing),
// so readiness is not held back.
func TestAttackConfigEditedWhileDown(t *testing.T) {
	for _, edit := range []string{"b removed", "b replaced by a mirror"} {
		t.Run(edit, func(t *testing.T) {
			k, a, b := mirrorAndNewest(t)
			urls := []string{a}
			if edit == "b replaced by a mirror" {
				c := newCDP(t)
				c.serve(k.part(t, k.dpX, 3), "")
				urls = []string{c.url()}
			}
			k.b.mode.Store("500")
			k.restartWith(t, false, urls...)
			if d := k.leaf(); d.Verdict == crl.Good || !d.Refused {
				t.Fatalf("after the edit and a restart: serial 5 %v refused %v (from %q); X5 was in force and nothing newer of X exists", d.Verdict, d.Refused, d.Info.Source)
			}
			if err := k.r.Ready(); err != nil {
				t.Errorf("the X5 floor holds readiness back: %v", err)
			}
			file := retiredKeptFile(t, k.r, b)
			if file == "" {
				t.Fatalf("X5 from b's record: not shown as kept (RetiredKept with a file): %+v", k.r.Status())
			}
			k.restartWith(t, false, urls...)
			k.want(t, "a second restart", crl.Revoked)
			if got := retiredKeptFile(t, k.r, b); got != file {
				t.Errorf("after a second restart: kept file %q; want %q", got, file)
			}
		})
	}
}

// mirrorAndNewest starts a refresher over a (a mirror held at X3) and b
// (X5, serial 5 revoked), both configured, with a store.
func mirrorAndNewest(t *testing.T) (k *keptFixture, a, b string) {
	t.Helper()
	k = newKeptFixture(t)
	a, b = k.f.cdp.url(), k.b.url()
	k.f.cdp.serve(k.part(t, k.dpX, 3), "")
	k.b.serve(k.part(t, k.dpX, 5, 5), "")
	k.restartWith(t, false, a, b)
	k.want(t, "X3 at a, X5 at b", crl.Revoked)
	return k, a, b
}

// TestDropACAWithAFloor: the opposite risk of TestAttackConfigEditedWhileDown.
// An admin who really drops a CA (its distribution points out of the
// configuration) must not be held to its last CRL for ever, stale and, under
// failClosedOnStale, refusing. The two documented ways: take the CA out of
// the trust store and restart (every kept or recorded CRL of an issuer the
// trust store does not vouch for is refused at load), or remove the kept
// file /status names and restart. Either way nothing of the CA is in force
// afterwards and the role is ready.
func TestDropACAWithAFloor(t *testing.T) {
	for _, how := range []string{"CA out of the trust store", "kept file removed"} {
		t.Run(how, func(t *testing.T) {
			k, _, b := mirrorAndNewest(t)
			k.down()
			k.restartWith(t, false) // the CA's URLs out of the configuration
			file := retiredKeptFile(t, k.r, b)
			if file == "" {
				t.Fatalf("X5 not kept as the floor of X: %+v", k.r.Status())
			}
			if how == "kept file removed" {
				if err := os.Remove(file); err != nil {
					t.Fatal(err)
				}
				k.restartWith(t, false)
			} else {
				k.restartUntrusted(t)
			}
			for _, st := range k.r.Status() {
				if st.Issuer != "" {
					t.Errorf("%s: a CRL of the dropped CA still in force: %+v", how, st)
				}
			}
			if err := k.r.Ready(); err != nil {
				t.Errorf("%s: not ready: %v", how, err)
			}
			if n := len(k.r.Snapshot().Indexes()); n != 0 {
				t.Errorf("%s: %d CRLs in the snapshot; want none", how, n)
			}
		})
	}
}

// restartUntrusted restarts k's refresher with no URL configured and a
// trust store without k's CA.
func (k *keptFixture) restartUntrusted(t *testing.T) {
	t.Helper()
	k.r = newRefresher(t, k.f.config(func(c *refresh.Config) {
		c.Store, c.URLs, c.FailHard = store.New(k.dir), nil, false
		c.Trusted = func() []*x509.Certificate { return nil }
	}))
	if err := k.r.StartupFetch(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestKeptCapLearnt: a certificate can name many URLs, so the CRLs learnt
// from certificates kept on disk are capped (MaxKept, here 1). At the cap
// a CRL of a new partition is not copied to kept/, but its URL's record
// holds it, and the next start reads that record as the floor of its
// partition: in force from there, shown with that file as the one to
// remove to drop it.
func TestKeptCapLearnt(t *testing.T) {
	k, c, y := newKeptFixtureY(t)
	a, b := k.f.cdp.url(), k.b.url()
	start := func() {
		k.r = newRefresher(t, k.f.config(func(cfg *refresh.Config) {
			cfg.Store, cfg.Fetcher.MaxBytes, cfg.URLs, cfg.FailHard, cfg.DeriveFromCAs, cfg.MaxKept = store.New(k.dir), 1<<16, []string{a}, false, true, 1
		}))
		if err := k.r.StartupFetch(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	start()
	for _, u := range []string{b, c.url()} {
		if n := k.r.AddDerived(u); n != 1 {
			t.Fatalf("AddDerived(%s) = %d", u, n)
		}
		k.r.RefreshNow(context.Background())
	}
	if learntKeptFile(k.r, b) == "" || learntKeptFile(k.r, c.url()) != "" {
		t.Fatalf("kept: b %q, c %q; want b's X5 only (the cap is 1): %+v", learntKeptFile(k.r, b), learntKeptFile(k.r, c.url()), k.r.Status())
	}
	if d := y(); d.Verdict != crl.Revoked {
		t.Fatalf("serial 6 before the restart: %v", d.Verdict)
	}
	k.down()
	c.mode.Store("500")
	start()
	k.want(t, "restart: X5 kept", crl.Revoked)
	if d := y(); d.Verdict != crl.Revoked {
		t.Fatalf("after a restart, serial 6 of Y7 (learnt at c, over the cap): %v (from %q); want revoked from c's record", d.Verdict, d.Info.Source)
	}
	var file string
	for _, st := range k.r.Status() {
		if st.URL == c.url() && st.RetiredKept {
			file = st.KeptFile
		}
	}
	if file == "" || filepath.Dir(file) != k.dir {
		t.Fatalf("Y7 in force from c's record: kept file %q; want c's record in %s: %+v", file, k.dir, k.r.Status())
	}
}
