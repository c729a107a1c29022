package edge

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/telemetry"
)

// TestTicketKeyFileProblems: config check (Validate, which `segmesh run`
// also refuses on) names the setting, the file's fault and the fix; a
// problem never quotes key bytes.
func TestTicketKeyFileProblems(t *testing.T) {
	k1, k2 := newTicketKey(t), newTicketKey(t)
	two := append(append([]byte{}, k1[:]...), k2[:]...)
	tests := []struct {
		name string
		data []byte // nil: no file
		mode os.FileMode
		want string // "" for no problem
	}{
		{"one key", k1[:], 0o600, ""},
		{"two keys", two, 0o400, ""},
		{"group may read (a Secret with fsGroup)", k1[:], 0o440, ""},
		{"missing", nil, 0, "cannot be read"},
		{"empty", []byte{}, 0o600, "holds no key (fewer than 1)"},
		{"short", k1[:31], 0o600, "is 31 bytes, not whole keys of 32"},
		{"trailing newline", append(append([]byte{}, two...), '\n'), 0o600, "is 65 bytes"},
		{"base64 text", []byte(base64.StdEncoding.EncodeToString(k1[:]) + "\n"), 0o600, "is 45 bytes"},
		{"too many", bytes.Repeat(k1[:], maxTicketKeys+1), 0o600, "holds more than 16 keys"},
		{"zero key", append(append([]byte{}, k1[:]...), make([]byte, 32)...), 0o600, "key 2 is all zero bytes"},
		{"others may read", k1[:], 0o604, "has mode 0604"},
		{"world readable", k1[:], 0o644, "has mode 0644"},
		{"group may write", k1[:], 0o660, "has mode 0660"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "tickets.key")
			if tt.data != nil {
				if err := os.WriteFile(path, tt.data, 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(path, tt.mode); err != nil {
					t.Fatal(err)
				}
			}
			c := config.Default()
			c.BaseDir = dir
			c.Segmesh.Edge.ExchangeURLs = []string{"https://mail.lab.test"}
			c.Segmesh.Edge.TLSSessionTicketKeyFile = "tickets.key" // relative: from the install directory
			var got []config.Problem
			for _, p := range Validate(&c) {
				if p.Key == keyTicketKeyFile {
					got = append(got, p)
				}
			}
			if tt.want == "" {
				if len(got) != 0 {
					t.Fatalf("problems for a good file: %v", got)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("got %d problems naming %s, want 1: %v", len(got), keyTicketKeyFile, got)
			}
			p := got[0]
			if !strings.Contains(p.Message, tt.want) || p.Fix == "" || p.Severity != config.SeverityError || p.Value != path {
				t.Fatalf("problem %+v, want an error about %s on %s with a fix", p, path, tt.want)
			}
			for _, secret := range []string{hex.EncodeToString(k1[:4]), base64.StdEncoding.EncodeToString(k1[:6])} {
				if strings.Contains(p.String(), secret) {
					t.Fatalf("the problem quotes key bytes: %s", p)
				}
			}
		})
	}
}

// TestTicketKeyMaxAgeNegative: a negative maximum age is refused.
func TestTicketKeyMaxAgeNegative(t *testing.T) {
	c := config.Default()
	c.Segmesh.Edge.TLSSessionTicketKeyMaxAgeHours = -1
	_, ps := configFrom(&c)
	for _, p := range ps {
		if p.Key == keyTicketKeyMaxAge && p.Severity == config.SeverityError {
			return
		}
	}
	t.Fatalf("no error for a negative %s: %v", keyTicketKeyMaxAge, ps)
}

// TestTicketKeyAge: a key file older than its maximum age shows as a
// /readyz note naming the setting, on /status and as the stale metric;
// a rotation (the file written again) clears it. /status shows
// fingerprints, never the keys.
func TestTicketKeyAge(t *testing.T) {
	dir := t.TempDir()
	k := newTicketKey(t)
	path := writeTicketKeys(t, filepath.Join(dir, "tickets.key"), k)
	written := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := os.Chtimes(path, written, written); err != nil {
		t.Fatal(err)
	}
	clock := written
	reader := sdkmetric.NewManualReader()
	st := &sessionTickets{now: func() time.Time { return clock }}
	if err := st.registerMetrics(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)).Meter("segmesh/edge")); err != nil {
		t.Fatal(err)
	}
	if _, ok := collectGauge(t, reader, telemetry.MetricEdgeTLSTicketKeyStale); !ok {
		t.Fatal("no stale gauge without a key file")
	}
	set, err := readTicketKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	st.use(set, 24*time.Hour)
	for _, tt := range []struct {
		at    time.Duration // after the file was written
		stale bool
	}{{0, false}, {24 * time.Hour, false}, {24*time.Hour + time.Minute, true}} {
		clock = written.Add(tt.at)
		notes := st.notes()
		if got := len(notes) == 1 && strings.Contains(notes[0], keyTicketKeyMaxAge) && strings.Contains(notes[0], path); got != tt.stale {
			t.Fatalf("at %s: notes %q, want stale %v", tt.at, notes, tt.stale)
		}
		if v, _ := collectGauge(t, reader, telemetry.MetricEdgeTLSTicketKeyStale); (v == 1) != tt.stale {
			t.Fatalf("at %s: %s = %d, want stale %v", tt.at, telemetry.MetricEdgeTLSTicketKeyStale, v, tt.stale)
		}
		status := st.status()
		if status["ticket_key_stale"] != tt.stale || status["ticket_key_age_seconds"] != int64(tt.at.Seconds()) {
			t.Fatalf("at %s: status %v", tt.at, status)
		}
		if s := fmt.Sprint(status); strings.Contains(s, hex.EncodeToString(k[:4])) || strings.Contains(s, base64.StdEncoding.EncodeToString(k[:6])) {
			t.Fatalf("/status shows the key: %s", s)
		}
	}
	// Rotation: the file written now.
	writeTicketKeys(t, path, newTicketKey(t), k)
	if err := os.Chtimes(path, clock, clock); err != nil {
		t.Fatal(err)
	}
	if set, err = readTicketKeys(path); err != nil {
		t.Fatal(err)
	}
	st.use(set, 24*time.Hour)
	if n := st.notes(); len(n) != 0 {
		t.Fatalf("notes after the rotation: %q", n)
	}
	st.handshake(true)
	st.handshake(false)
	st.handshake(false)
	got := collectInts(t, reader)
	if got[telemetry.MetricEdgeTLSHandshakes+"/resumed"] != 1 || got[telemetry.MetricEdgeTLSHandshakes+"/full"] != 2 {
		t.Fatalf("handshake counts %v, want resumed 1, full 2", got)
	}
}

// TestTicketKeyFileRefusedOnReloadKeepsKeys: a reload whose key file is
// broken is refused whole and the keys in force stay.
func TestTicketKeyFileRefusedOnReloadKeepsKeys(t *testing.T) {
	path := writeTicketKeys(t, filepath.Join(t.TempDir(), "tickets.key"), newTicketKey(t))
	h := newHarness(t, withTicketKeys(path), options{})
	before := h.edge.sessions.cur.Load()
	if before == nil {
		t.Fatal("no shared keys in force at start")
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := h.edge.PrepareConfig(t.Context(), h.cfg); err == nil || !strings.Contains(err.Error(), keyTicketKeyFile) {
		t.Fatalf("reload with a world-readable key file: %v, want a refusal naming %s", err, keyTicketKeyFile)
	}
	if h.edge.sessions.cur.Load() != before {
		t.Fatal("the keys in force changed on a refused reload")
	}
	// Emptying the setting goes back to per-process keys.
	next := *h.cfg
	next.Segmesh.Edge.TLSSessionTicketKeyFile = ""
	commit, err := h.edge.PrepareConfig(t.Context(), &next)
	if err != nil {
		t.Fatal(err)
	}
	commit()
	if h.edge.sessions.cur.Load() != nil {
		t.Fatal("shared keys still in force after the setting was emptied")
	}
}
