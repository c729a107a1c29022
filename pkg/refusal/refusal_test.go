package refusal_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/segmesh/segmesh/pkg/refusal"
)

// TestMemory: a noted refusal is returned for the same credentials within
// the window, wrapping the server's error and saying until when; other
// credentials, the same parts split differently, and the time after the
// window are not refused. Several refusals are held, the oldest dropped
// beyond Remembered.
func TestMemory(t *testing.T) {
	at := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	now := at
	m := refusal.New(0, func() time.Time { return now })
	kdc := errors.New("KDC_ERR_PREAUTH_FAILED")
	m.Note(kdc, "LAB.TEST", "svc_seg", "Wr0ng")
	for _, tc := range []struct {
		name    string
		after   time.Duration
		parts   []string
		refused bool
	}{
		{"the same credentials", 0, []string{"LAB.TEST", "svc_seg", "Wr0ng"}, true},
		{"just inside the window", refusal.DefaultWindow - time.Second, []string{"LAB.TEST", "svc_seg", "Wr0ng"}, true},
		{"another password", 0, []string{"LAB.TEST", "svc_seg", "Wr0ng2"}, false},
		{"the same text split otherwise", 0, []string{"LAB.TEST", "svc_segW", "r0ng"}, false},
		{"the window passed", refusal.DefaultWindow, []string{"LAB.TEST", "svc_seg", "Wr0ng"}, false},
	} {
		now = at.Add(tc.after)
		err := m.Lately(tc.parts...)
		if (err != nil) != tc.refused {
			t.Errorf("%s: Lately = %v, want refused %v", tc.name, err, tc.refused)
			continue
		}
		if err == nil {
			continue
		}
		if !errors.Is(err, kdc) || !strings.Contains(err.Error(), "not asked again before 2026-12-05T12:01:00Z") {
			t.Errorf("%s: Lately = %v, want the KDC's error and the time of the next try", tc.name, err)
		}
		if strings.Contains(err.Error(), "Wr0ng") {
			t.Errorf("%s: the refusal shows the password: %v", tc.name, err)
		}
	}
	// Passwords tried in turn are each remembered, up to Remembered.
	now = at
	m.Note(kdc, "LAB.TEST", "svc_seg", "Wr0ng")
	for i := range refusal.Remembered {
		m.Note(errors.New("refused"), "LAB.TEST", "svc_seg", fmt.Sprint("other-", i))
	}
	if err := m.Lately("LAB.TEST", "svc_seg", "Wr0ng"); err != nil {
		t.Errorf("the oldest refusal is still remembered after %d others: %v", refusal.Remembered, err)
	}
	for _, i := range []int{0, refusal.Remembered - 1} {
		if err := m.Lately("LAB.TEST", "svc_seg", fmt.Sprint("other-", i)); err == nil {
			t.Errorf("refusal %d of %d is forgotten", i+1, refusal.Remembered)
		}
	}
}
