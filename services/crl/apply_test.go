package crl

import (
	"context"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/crl/crltest"
)

// reloaded is config.json's form of a crl role configuration with urls,
// revocation honoured through Require Client Certificate.
func reloaded(urls []string, edit func(*config.Config)) *config.Config {
	c := config.Default()
	c.RequireClientCertificate = true
	c.Gateway.RevocationEnabled = true
	c.Gateway.CRLURIs = urls
	c.Gateway.CRLFetchIntervalMinutes = 60
	if edit != nil {
		edit(&c)
	}
	return &c
}

// TestPrepareConfigMovesTheDistributionPoint moves the role from one
// distribution point to another that serves an older CRL of the same CA,
// in the same save as fail-closed: nothing changes before the commit; after
// it the new URL is fetched, the revoked certificate stays revoked (the
// removed URL's newer CRL stays in force), and fail-closed waits for a
// restart. A URL the role cannot fetch is refused, naming the setting.
func TestPrepareConfigMovesTheDistributionPoint(t *testing.T) {
	f := newFixture(t)
	f.cdp.serve(f.crl(t, 2, 5))
	other := newCDP(t)
	other.serve(f.crl(t, 1))
	s := f.service(t, f.config(t))
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	leaf := f.ca.Leaf(t, big.NewInt(5), f.now)
	if rev, _, known, _ := s.Check(leaf); !rev || !known {
		t.Fatalf("before: revoked %v known %v", rev, known)
	}
	listed := func(url string) bool {
		for _, st := range s.refresher.Status() {
			if st.URL == url && !st.CheckedAt.IsZero() {
				return true
			}
		}
		return false
	}

	commit, err := s.PrepareConfig(context.Background(), reloaded([]string{other.url()}, func(c *config.Config) {
		c.Segmesh.CRL.FailClosedOnStale = true
	}))
	if err != nil {
		t.Fatal(err)
	}
	if listed(other.url()) {
		t.Fatal("prepared, not committed: the new URL was fetched already")
	}
	if notes := s.Notes(); len(notes) != 0 {
		t.Fatalf("prepared, not committed: notes %q", notes)
	}
	commit()
	if notes := s.Notes(); len(notes) != 1 || !strings.Contains(notes[0], f.cdp.url()) || !strings.Contains(notes[0], config.KeyCRLURIs) {
		t.Fatalf("after the move, /readyz notes %q: want one naming the removed URL %s, kept in force, and %s", notes, f.cdp.url(), config.KeyCRLURIs)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !listed(other.url()) {
		if time.Now().After(deadline) {
			t.Fatalf("the new distribution point was not fetched after the commit: %+v", s.refresher.Status())
		}
		time.Sleep(5 * time.Millisecond) // poll: the refresh loop fetches it
	}
	rev, info, known, _ := s.Check(leaf)
	if !rev || !known || info.Source != f.cdp.url() {
		t.Fatalf("after the move: revoked %v known %v source %q, want still revoked by the removed URL's newer CRL", rev, known, info.Source)
	}
	for _, ix := range s.Snapshot().Indexes() {
		if ix.Meta().FailClosed {
			t.Error("failClosedOnStale was applied by a reload; it takes a restart")
		}
	}

	if _, err := s.PrepareConfig(context.Background(), reloaded([]string{"ldap:///CN=Lab%20CA,CN=CDP"}, nil)); err == nil ||
		!strings.Contains(err.Error(), config.KeyCRLURIs) {
		t.Fatalf("PrepareConfig with an ldap:// URL = %v, want a refusal naming %s", err, config.KeyCRLURIs)
	}
}

// TestNotesNameAStaleCRL: a CRL past its nextUpdate that the role still
// serves (fail-open) is a /readyz note naming its distribution point, and a
// fresh one gives none.
func TestNotesNameAStaleCRL(t *testing.T) {
	for _, tc := range []struct {
		name      string
		next      time.Duration // the CRL's nextUpdate from now
		wantNotes int
	}{
		{"fresh", 24 * time.Hour, 0},
		{"stale", -24 * time.Hour, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.cdp.serve(f.ca.CRL(t, crltest.CRLOptions{Number: 1, ThisUpdate: f.now.Add(-48 * time.Hour), NextUpdate: f.now.Add(tc.next)}))
			s := f.service(t, f.config(t))
			if err := s.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			notes := s.Notes()
			if len(notes) != tc.wantNotes {
				t.Fatalf("notes %q, want %d", notes, tc.wantNotes)
			}
			for _, n := range notes {
				if !strings.Contains(n, f.cdp.url()) || !strings.Contains(n, "nextUpdate") {
					t.Errorf("note %q: want the distribution point %s and its nextUpdate", n, f.cdp.url())
				}
			}
		})
	}
}
