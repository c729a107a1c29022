package crl

import (
	"context"
	"strings"
	"testing"
)

// TestAttackDisplacedNoteWithoutStateDir: a displaced CRL is kept on disk
// only when the role has a state directory (and the write succeeded).
// Without one, /readyz's note said it was "kept in force, also across
// restarts": an admin reading it would restart safely in their view, and
// the restart forgets the only CRL listing what it revoked (failed on
// main). The note must say it is held in memory only.
func TestAttackDisplacedNoteWithoutStateDir(t *testing.T) {
	for _, stateDir := range []bool{true, false} {
		name := map[bool]string{true: "with a state directory", false: "without a state directory"}[stateDir]
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			url := f.cdp.url()
			f.cdp.serve(f.partitionCRL(t, 5, url, 42))
			cfg := f.config(t)
			cfg.URLs = []string{url}
			if !stateDir {
				cfg.StateDir = ""
			}
			s := f.service(t, cfg)
			if err := s.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			f.cdp.serve(f.partitionCRL(t, 6, "http://pki.lab.test/other.crl"))
			s.refresher.RefreshNow(context.Background())
			notes := strings.Join(s.Notes(), "\n")
			if !strings.Contains(notes, "another issuer or partition") {
				t.Fatalf("notes = %q; want the displaced CRL named", notes)
			}
			if across := strings.Contains(notes, "also across restarts"); across != stateDir {
				t.Fatalf("notes = %q; 'also across restarts' said %v, want %v", notes, across, stateDir)
			}
			if !stateDir && !strings.Contains(notes, "a restart forgets it") {
				t.Fatalf("notes = %q; want it said that a restart forgets the displaced CRL", notes)
			}
		})
	}
}
