package edge

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestRefusalLogKeepsNewestFirstAndBounded(t *testing.T) {
	var l refusalLog
	if got := l.recent(); len(got) != 0 {
		t.Fatalf("empty log returned %v", got)
	}
	for i := range refusalLogSize + 7 {
		l.add(refusalRecord{Reason: fmt.Sprint(i)})
	}
	got := l.recent()
	if len(got) != refusalLogSize || got[0].Reason != fmt.Sprint(refusalLogSize+6) || got[len(got)-1].Reason != "7" {
		t.Fatalf("got %d records, first %q, last %q", len(got), got[0].Reason, got[len(got)-1].Reason)
	}
}

// TestStatusSectionListsRecentRefusals checks that a refused handshake shows
// in the edge's status section in the shape the admin status page reads.
func TestStatusSectionListsRecentRefusals(t *testing.T) {
	h := newHarness(t, nil, options{})
	rogue := newCA(t, "Rogue CA").issue(t, certOpts{cn: "mallory"})
	if !refusedOrForbidden(t, h.client(&rogue, false), h.url(syncPath)) {
		t.Fatal("request was served")
	}
	var list []map[string]any
	waitFor(t, "refusal in the status section", func() bool {
		b, err := json.Marshal(h.edge.statusSection())
		if err != nil {
			t.Fatal(err)
		}
		var st map[string]any
		_ = json.Unmarshal(b, &st)
		raw, _ := json.Marshal(st["recent_refusals"])
		_ = json.Unmarshal(raw, &list)
		return len(list) > 0
	})
	r := list[0]
	if r["reason"] != "certificate untrusted" || !strings.Contains(fmt.Sprint(r["subject"]), "mallory") || r["status"] != "handshake refused" {
		t.Fatalf("record = %v", r)
	}
	if ts, err := time.Parse(time.RFC3339Nano, fmt.Sprint(r["time"])); err != nil || time.Since(ts) > time.Minute {
		t.Fatalf("time %v: %v", r["time"], err)
	}
}
