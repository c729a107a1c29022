package role

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/problem"
)

// TestBuildProblems: a constructor's error becomes a problem on each
// setting its *problem.SettingError values name, with the setting's value
// and fix, whatever the text holds (a text quoting another key stays on
// its own); one without a SettingError goes to the last setting; a
// *config.Problem in it is kept as it is.
func TestBuildProblems(t *testing.T) {
	settings := []Setting{
		{Key: "a.key", Value: "A", Fix: "fix a"},
		{Key: "b.key", Value: "B", Fix: "fix b"},
		{Key: "fallback.key", Fix: "fix fallback"},
	}
	own := &config.Problem{Severity: config.SeverityError, Key: "own.key", Value: "v", Message: "own", Fix: "own fix"}
	type want struct{ key, value, fix string }
	for _, tc := range []struct {
		name string
		err  error
		want []want
	}{
		{"a setting", fmt.Errorf("x: %w", problem.OnSetting("a.key", errors.New("a is bad"))), []want{{"a.key", "A", "fix a"}}},
		{"a text naming another key", problem.OnSetting("b.key", errors.New("b.key is not a.key")), []want{{"b.key", "B", "fix b"}}},
		{"two settings", errors.Join(problem.OnSetting("b.key", errors.New("b")), problem.OnSetting("a.key", errors.New("a"))),
			[]want{{"b.key", "B", "fix b"}, {"a.key", "A", "fix a"}}},
		{"a key not listed", problem.OnSetting("c.key", errors.New("c")), []want{{"c.key", "", "fix fallback"}}},
		{"no setting named", errors.New("kdc: a.key something else"), []want{{"fallback.key", "", "fix fallback"}}},
		{"a problem kept", fmt.Errorf("ticket: %w", own), []want{{"own.key", "v", "own fix"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps := BuildProblems(Ticket, tc.err, settings)
			var got []want
			for _, p := range ps {
				if p.Severity != config.SeverityError {
					t.Errorf("%+v is not an error", p)
				}
				if p.Key != "own.key" && !strings.Contains(p.Message, "start would stop") {
					t.Errorf("message %q does not say the start would stop", p.Message)
				}
				got = append(got, want{p.Key, p.Value, p.Fix})
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("BuildProblems = %+v, want %+v", got, tc.want)
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

// TestAttackBuildProblemsNeverPass: whatever a constructor's refusal
// holds, BuildProblems reports it as errors on every setting it names, so
// `config check` and a reload refuse what the start (which stops on the
// error) refuses. On main a *config.Problem the constructor returned with
// a warning's or an ignored setting's severity was reported as it was, and
// check passed a file the start refused; and a refusal joining a
// *config.Problem with a *problem.SettingError lost the second.
func TestAttackBuildProblemsNeverPass(t *testing.T) {
	settings := []Setting{{Key: "a.key", Value: "A", Fix: "fix a"}, {Key: "fallback.key", Fix: "fix fallback"}}
	warn := &config.Problem{Severity: config.SeverityWarning, Key: "own.key", Value: "v", Message: "suspicious", Fix: "own fix"}
	ignored := &config.Problem{Severity: config.SeverityIgnored, Key: "own.key", Value: "v", Message: "ignored"}
	bad := &config.Problem{Severity: config.SeverityError, Key: "own.key", Value: "v", Message: "bad", Fix: "own fix"}
	for _, tc := range []struct {
		name string
		err  error
		keys []string
	}{
		{"a warning returned as the refusal", fmt.Errorf("identity: %w", warn), []string{"own.key"}},
		{"an ignored setting returned as the refusal", ignored, []string{"own.key"}},
		{"a problem and a setting", errors.Join(bad, problem.OnSetting("a.key", errors.New("a"))), []string{"own.key", "a.key"}},
		{"a setting and a problem", errors.Join(problem.OnSetting("a.key", errors.New("a")), fmt.Errorf("ca: %w", bad)), []string{"own.key", "a.key"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var keys []string
			for _, p := range BuildProblems(Identity, tc.err, settings) {
				if p.Severity != config.SeverityError {
					t.Errorf("%s is not an error: config check would pass what the start refuses", p)
				}
				keys = append(keys, p.Key)
			}
			if !slices.Equal(keys, tc.keys) {
				t.Errorf("BuildProblems names %q, want %q", keys, tc.keys)
			}
		})
	}
}
