//go:build lab

package crl

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmesh/segmesh/internal/labenv"
	"github.com/segmesh/segmesh/internal/testpki"
	"github.com/segmesh/segmesh/pkg/crl/store"
)

// TestLabFloorWithoutDescriptionKept: TestLabNewestCRLNeverRolledBack
// after a crash between the two writes of urlB's record (its description
// lost: the record's URL unknown). The lab's ca2 partition A: A3 at urlA
// (a mirror lagging), A5 (revoking the device) at urlB, both listed. The
// role is restarted with urlB out of the configuration and kept/ not
// writable, so A5 stays in force from urlB's record, named by its file;
// a reload lists urlB again, where the lab's CDP now serves A3. A restart
// with the CDP files gone must keep the device revoked: on main urlB's A3
// was saved over the record, the only copy of A5.
func TestLabFloorWithoutDescriptionKept(t *testing.T) {
	lab := labenv.Up(t)
	w := newPartitionA(t, lab, "crash")
	cdpDir, urlA, urlB := w.cdpDir, w.urlA, w.urlB
	device := w.ca2.Device(t, "crash device", testpki.Serial(w.serial), testpki.CDP(urlA)).Cert
	state := t.TempDir()
	w.publish(urlA, w.part(t, 3))
	w.publish(urlB, w.part(t, 5, w.serial))
	check := func(step string, s *Service) {
		t.Helper()
		if revoked, info, _, _ := s.Check(device); !revoked {
			t.Fatalf("%s: the device revoked in A5 is accepted (%+v)", step, info)
		}
	}
	s, err := labServiceOf(t, lab, Config{URLs: []string{urlA, urlB}, FailHard: true, StateDir: state})
	if err != nil {
		t.Fatalf("Start against the lab CDP: %v", err)
	}
	check("both listed", s)
	_ = s.Stop(context.Background())

	rec := store.New(state).RecordFile(urlB)
	if err := os.Remove(strings.TrimSuffix(rec, ".crl") + ".json"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(state, "kept"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err = labServiceOf(t, lab, Config{URLs: []string{urlA}, FailHard: true, StateDir: state})
	if err != nil {
		t.Fatalf("restart with urlB out: %v", err)
	}
	check("restarted with urlB out, its record without description", s)
	w.publish(urlB, w.part(t, 3)) // urlB lags now
	commit, err := s.refresher.Reconfigure([]string{urlA, urlB}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	commit()
	s.refresher.RefreshNow(context.Background())
	check("urlB listed again, serving A3", s)
	_ = s.Stop(context.Background())

	for _, u := range []string{urlA, urlB} {
		_ = os.Remove(filepath.Join(cdpDir, filepath.Base(u)))
	}
	restarted, err := labServiceOf(t, lab, Config{URLs: []string{urlA, urlB}, StateDir: state})
	if err != nil {
		t.Fatalf("restart on the stored copies with the CDP answering 404: %v", err)
	}
	check("restarted with the CDP files gone", restarted)
}
