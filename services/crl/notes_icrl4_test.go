package crl

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/segmesh/segmesh/internal/testlog"
	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/crl/fetch"
	"github.com/segmesh/segmesh/pkg/crl/refresh"
	"github.com/segmesh/segmesh/pkg/crl/store"
	"github.com/segmesh/segmesh/pkg/role"
	"github.com/segmesh/segmesh/pkg/telemetry"
	"github.com/segmesh/segmesh/pkg/trust"
)

// TestRetiredNoteWhenItsCopyFailed: a CRL a reload removed that is the
// newest of its partition is copied to kept/; when that copy fails (a
// file where kept/ goes: the tests run as root, which a read-only
// directory does not stop), /readyz said "restart to drop it". A restart
// does not drop it: its distribution point's record, read at the start as
// the floor of its partition, puts it in force again (the safe side). The
// note must say so and name what does drop it (failed on main); the
// restart is made, and serial 42 stays revoked.
func TestRetiredNoteWhenItsCopyFailed(t *testing.T) {
	f, s := startPartitioned(t, true)
	url := f.cdp.url()
	if err := os.WriteFile(filepath.Join(s.cfg.StateDir, "kept"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	notes := retireAll(t, s)
	if strings.Contains(notes, "restart to drop it") {
		t.Errorf("notes = %q; say a restart drops the retired CRL, which its record keeps", notes)
	}
	for _, want := range []string{"a restart keeps it", config.KeyCRLURIs, trust.KeyPath} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes = %q; want %q", notes, want)
		}
	}

	cfg := s.cfg
	cfg.URLs, cfg.UseCertificateCDPs, cfg.FailHard = nil, true, false // none listed (a list is required without useCertificateCdps)
	restarted := f.service(t, cfg)
	if err := restarted.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	leaf := f.ca.Leaf(t, big.NewInt(42), f.now, url)
	if revoked, info, known, _ := restarted.Check(leaf); !revoked || !known {
		t.Fatalf("restarted without %s: serial 42 revoked %v known %v (from %q); want revoked, from its record", url, revoked, known, info.Source)
	}
}

// TestHousekeepingFailureShown: a failed housekeeping of the state
// directory (here a record's validators rewritten after the same CRL
// again, its description made a directory) was only logged. It is counted
// in segmesh_crl_save_failures_total with its reason and shown on /status
// (stateDirHousekeeping), and, losing no CRL, adds no /readyz note and
// leaves the role ready.
func TestHousekeepingFailureShown(t *testing.T) {
	f, s, reader, dir := newSavingService(t)
	url := f.cdp.url()
	desc := strings.TrimSuffix(store.New(dir).RecordFile(url), ".crl") + ".json"
	if err := os.Remove(desc); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(desc, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	s.refresher.RefreshNow(context.Background()) // the same CRL 1: its record touched
	if got, _ := points(t, reader, telemetry.MetricCRLSaveFailures, attribute.String(telemetry.AttrURL, url),
		attribute.String(telemetry.AttrReason, refresh.HousekeepTouch)); got != 1 {
		t.Errorf("%s{reason=%s} = %v; want 1", telemetry.MetricCRLSaveFailures, refresh.HousekeepTouch, got)
	}
	b, err := json.Marshal(s.statusSection())
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Housekeeping struct {
			Failures  map[string]int `json:"failures"`
			LastError string         `json:"lastError"`
		} `json:"stateDirHousekeeping"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	if st.Housekeeping.Failures[refresh.HousekeepTouch] != 1 || !strings.Contains(st.Housekeeping.LastError, url) {
		t.Errorf("/status %s: want stateDirHousekeeping with one %s failure naming %s", b, refresh.HousekeepTouch, url)
	}
	if notes := s.Notes(); len(notes) != 0 {
		t.Errorf("notes = %q; want none (no CRL lost)", notes)
	}
	if err := s.Ready(context.Background()); err != nil {
		t.Errorf("not ready after a housekeeping failure: %v", err)
	}
}

// TestEmptyStateDirWarned: a start whose state directory holds no CRL
// (a first start, or segmesh.crl.stateDir changed while the process was
// down) logs a warning naming the directory and the setting, and /status
// says so (stateDirEmptyAtStart); a start on the directory the first run
// filled does neither.
func TestEmptyStateDirWarned(t *testing.T) {
	f := newFixture(t)
	f.cdp.serve(f.crl(t, 1, 5))
	cfg := f.config(t)
	const warning = "crl state directory holds no CRL"
	for i, want := range []bool{true, false} {
		var logs testlog.Buffer
		s, err := New(role.Deps{Logger: slog.New(slog.NewTextHandler(&logs, nil))}, WithConfig(cfg),
			WithTrusted(func() []*x509.Certificate { return []*x509.Certificate{f.ca.Cert} }),
			WithFetcher(&fetch.Fetcher{Timeout: 5 * time.Second}))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		st, err := json.Marshal(s.statusSection())
		if err != nil {
			t.Fatal(err)
		}
		if shown := strings.Contains(string(st), `"stateDirEmptyAtStart":true`); shown != want {
			t.Errorf("start %d: /status %s: stateDirEmptyAtStart %v, want %v", i+1, st, shown, want)
		}
		if err := s.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		got := logs.String()
		if warned := strings.Contains(got, warning); warned != want || want && (!strings.Contains(got, cfg.StateDir) || !strings.Contains(got, "segmesh.crl.stateDir")) {
			t.Errorf("start %d: warned %v, want %v; log:\n%s", i+1, warned, want, got)
		}
	}
}
