package role

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/pkg/config"
)

// TestBuildProblem: a constructor's error becomes the problem of the
// setting it names (the first match, else the last setting), with the
// setting's value and fix; a *config.Problem in it is kept as it is.
func TestBuildProblem(t *testing.T) {
	settings := []Setting{
		{Match: "armor account", Key: "a.key", Value: "A", Fix: "fix a"},
		{Match: "account", Key: "b.key", Value: "B", Fix: "fix b"},
		{Key: "fallback.key", Fix: "fix fallback"},
	}
	own := &config.Problem{Severity: config.SeverityError, Key: "own.key", Value: "v", Message: "own", Fix: "own fix"}
	for _, tc := range []struct {
		name            string
		err             error
		key, value, fix string
	}{
		{"the first match", errors.New("s4u: armor account x has no password"), "a.key", "A", "fix a"},
		{"a later match", errors.New("s4u: service account name is bad"), "b.key", "B", "fix b"},
		{"no match", errors.New("kdc: something else"), "fallback.key", "", "fix fallback"},
		{"a problem kept", fmt.Errorf("ticket: %w", own), "own.key", "v", "own fix"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := BuildProblem(Ticket, tc.err, settings)
			if p.Severity != config.SeverityError || p.Key != tc.key || p.Value != tc.value || p.Fix != tc.fix {
				t.Fatalf("BuildProblem = %+v, want an error on %s=%q with %q", p, tc.key, tc.value, tc.fix)
			}
			if p.Key != "own.key" && !strings.Contains(p.Message, tc.err.Error()) {
				t.Errorf("message %q does not hold the constructor's error", p.Message)
			}
		})
	}
}

// TestWithBuild: the constructor runs only when the rules found no error;
// its problems follow the rules' warnings.
func TestWithBuild(t *testing.T) {
	warn := config.Problem{Severity: config.SeverityWarning, Key: "w"}
	bad := config.Problem{Severity: config.SeverityError, Key: "e"}
	built := config.Problem{Severity: config.SeverityError, Key: "built"}
	for _, tc := range []struct {
		name  string
		rules []config.Problem
		want  []string
		ran   bool
	}{
		{"no problem", nil, []string{"built"}, true},
		{"a warning", []config.Problem{warn}, []string{"w", "built"}, true},
		{"an error", []config.Problem{warn, bad}, []string{"w", "e"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ran := false
			got := WithBuild(tc.rules, func() []config.Problem { ran = true; return []config.Problem{built} })
			var keys []string
			for _, p := range got {
				keys = append(keys, p.Key)
			}
			if ran != tc.ran || strings.Join(keys, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("WithBuild = %v (build ran: %v), want %v (ran: %v)", keys, ran, tc.want, tc.ran)
			}
		})
	}
}
