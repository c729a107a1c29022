package crl

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"

	"github.com/segmesh/segmesh/pkg/telemetry"
)

// TestSaveFailureShown: a CRL the role cannot write to its state
// directory (a file where the directory goes: the tests run as root, which
// a read-only directory does not stop) was only logged. While the last
// write of a URL's CRL failed, /readyz has a note naming the URL and the
// setting, /status the error (saveError), and segmesh_crl_save_failures
// counts it; the role stays ready (it serves the CRL it fetched). The next
// successful write ends the note and the error.
func TestSaveFailureShown(t *testing.T) {
	f, s, reader, dir := newSavingService(t)
	if notes := s.Notes(); len(notes) != 0 {
		t.Fatalf("notes after a good start: %q", notes)
	}

	fix := blockStateDir(t, dir)
	f.cdp.serve(f.crl(t, 2, 5, 6))
	s.refresher.RefreshNow(context.Background())
	notes := strings.Join(s.Notes(), "\n")
	for _, want := range []string{f.cdp.url(), "could not be written to the state directory", "segmesh.crl.stateDir"} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes = %q; want %q", notes, want)
		}
	}
	if saveError(t, s) == "" {
		t.Errorf("/status: no saveError while the save fails")
	}
	url := attribute.String(telemetry.AttrURL, f.cdp.url())
	if got, _ := points(t, reader, telemetry.MetricCRLSaveFailures, url, attribute.String(telemetry.AttrReason, "record")); got != 1 {
		t.Errorf("%s{reason=record} = %v; want 1", telemetry.MetricCRLSaveFailures, got)
	}
	if err := s.Ready(context.Background()); err != nil {
		t.Errorf("not ready while the save fails: %v", err)
	}

	fix()
	f.cdp.serve(f.crl(t, 3, 5, 6, 7))
	s.refresher.RefreshNow(context.Background())
	if notes := s.Notes(); len(notes) != 0 {
		t.Errorf("notes after a successful save: %q", notes)
	}
	if e := saveError(t, s); e != "" {
		t.Errorf("/status saveError %q after a successful save", e)
	}
}

// saveError returns the saveError of the only source on s's /status.
func saveError(t *testing.T, s *Service) string {
	t.Helper()
	b, err := json.Marshal(s.statusSection())
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Sources []struct {
			SaveError string `json:"saveError"`
		} `json:"sources"`
	}
	if err := json.Unmarshal(b, &st); err != nil || len(st.Sources) != 1 {
		t.Fatalf("/status %s: %v", b, err)
	}
	return st.Sources[0].SaveError
}

// TestLearntKeptNote: a CRL learnt from a certificate that is the newest
// of its partition is kept on disk, so /readyz says it is kept across
// restarts, names the file and how to drop it, and /status shows
// learntKept with the file.
func TestLearntKeptNote(t *testing.T) {
	f := newFixture(t)
	learnt := newCDP(t)
	url := learnt.url()
	learnt.serve(f.partitionCRL(t, 5, url, 42))
	cfg := f.config(t)
	cfg.URLs, cfg.UseCertificateCDPs, cfg.FailHard = nil, true, false
	s := f.service(t, cfg)
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := s.refresher.AddDerived(url); n != 1 {
		t.Fatalf("AddDerived = %d", n)
	}
	s.refresher.RefreshNow(context.Background())
	var file string
	for _, st := range s.refresher.Status() {
		if st.LearntKept {
			file = st.KeptFile
		}
	}
	if file == "" {
		t.Fatalf("no LearntKept source with a file: %+v", s.refresher.Status())
	}
	notes := strings.Join(s.Notes(), "\n")
	for _, want := range []string{"learnt from a certificate", "also across restarts", "remove " + file + " and restart"} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes = %q; want %q", notes, want)
		}
	}
	b, err := json.Marshal(s.statusSection())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"learntKept":true`) {
		t.Errorf("/status %s: no learntKept", b)
	}
}
