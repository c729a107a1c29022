package crl

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
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
			f, s := startPartitioned(t, stateDir)
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

// TestRetiredKeptNote: a CRL retired by a reload that is the newest of its
// partition is kept on disk when the role has a state directory, so
// /readyz must not say that a restart drops it (a restart puts it in force
// again): the note names the kept file and how to drop it, and /status
// shows retiredKept. Without a state directory a restart does forget it,
// and the note says so.
func TestRetiredKeptNote(t *testing.T) {
	for _, stateDir := range []bool{true, false} {
		name := map[bool]string{true: "with a state directory", false: "without a state directory"}[stateDir]
		t.Run(name, func(t *testing.T) {
			_, s := startPartitioned(t, stateDir)
			notes := retireAll(t, s)
			var file string
			for _, st := range s.refresher.Status() {
				if st.RetiredKept {
					file = st.KeptFile
				}
			}
			if (file != "") != stateDir {
				t.Fatalf("RetiredKept file %q; want one %v", file, stateDir)
			}
			if drop := strings.Contains(notes, "restart to drop it"); drop == stateDir {
				t.Fatalf("notes = %q; 'restart to drop it' said %v, want %v", notes, drop, !stateDir)
			}
			if stateDir && !strings.Contains(notes, "remove "+file+" and restart") {
				t.Fatalf("notes = %q; want how to drop %s", notes, file)
			}
			st, err := json.Marshal(s.statusSection())
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Contains(string(st), `"retiredKept":true`); got != stateDir {
				t.Fatalf("/status %s: retiredKept %v, want %v", st, got, stateDir)
			}
		})
	}
}

// startPartitioned starts the role on one distribution point giving a
// partition CRL that revokes serial 42, with or without a state directory.
func startPartitioned(t *testing.T, stateDir bool) (*fixture, *Service) {
	t.Helper()
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
	return f, s
}

// retireAll removes every distribution point of s by a reload and returns
// the /readyz notes after it, which name the retired CRL.
func retireAll(t *testing.T, s *Service) string {
	t.Helper()
	commit, err := s.refresher.Reconfigure(nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	commit()
	notes := strings.Join(s.Notes(), "\n")
	if !strings.Contains(notes, "a reload removed") {
		t.Fatalf("notes = %q; want the retired CRL named", notes)
	}
	return notes
}
