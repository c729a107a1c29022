package problem_test

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"testing"

	"github.com/segmesh/segmesh/pkg/problem"
)

func TestRendering(t *testing.T) {
	cause := &fs.PathError{Op: "open", Path: "a.pem", Err: fs.ErrNotExist}
	tests := []struct {
		name        string
		p           problem.Problem
		str, errStr string
	}{
		{"config error", problem.Problem{Key: "kcd.targetSPN", Value: "HTTP", Message: "is not an SPN", Fix: "write HTTP/host"},
			`error: kcd.targetSPN = "HTTP": is not an SPN; fix: write HTTP/host`, `kcd.targetSPN = "HTTP": is not an SPN; fix: write HTTP/host`},
		{"missing value, no fix", problem.Problem{Severity: problem.SeverityIgnored, Key: "x", Message: "SEG ignores it"},
			`ignored: x: SEG ignores it`, `ignored: x: SEG ignores it`},
		{"trust warning", problem.Problem{Severity: problem.SeverityWarning, Key: "clientCertTrustStorePath", Value: "a.pem", Message: "expired", Package: "trust", Err: cause},
			`warning: clientCertTrustStorePath = "a.pem": expired`, `trust: warning: clientCertTrustStorePath = "a.pem": expired`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if s := tt.p.String(); s != tt.str {
				t.Errorf("String() = %q, want %q", s, tt.str)
			}
			if s := tt.p.Error(); s != tt.errStr {
				t.Errorf("Error() = %q, want %q", s, tt.errStr)
			}
			var err error = &tt.p
			if errors.Is(err, fs.ErrNotExist) != (tt.p.Err != nil) {
				t.Error("Unwrap does not reach the cause")
			}
		})
	}
	if problem.Severity(7).String() != "severity(7)" {
		t.Error("unknown severity")
	}
}

func TestSameIgnoresTheCause(t *testing.T) {
	a := problem.Problem{Key: "k", Value: "v", Message: "m", Fix: "f", Err: errors.New("one")}
	b := a
	b.Err = errors.New("two")
	if !a.Same(b) {
		t.Error("same finding with another cause is not Same")
	}
	for _, c := range []problem.Problem{{Key: "k2", Value: "v", Message: "m", Fix: "f"}, {Severity: problem.SeverityWarning, Key: "k", Value: "v", Message: "m", Fix: "f"}} {
		if a.Same(c) {
			t.Errorf("%v is Same as %v", c, a)
		}
	}
}

// TestSettingErrors: every *SettingError in an error's tree is found,
// through fmt's %w, errors.Join and a Problem's Err, outermost first; the
// text is the wrapped error's.
func TestSettingErrors(t *testing.T) {
	a, b := problem.OnSetting("a.key", errors.New("a")), problem.OnSetting("b.key", errors.New("b"))
	for _, tc := range []struct {
		name string
		err  error
		want []string
	}{
		{"none", errors.New("x"), nil},
		{"nil", nil, nil},
		{"wrapped", fmt.Errorf("x: %w", a), []string{"a.key"}},
		{"joined", errors.Join(b, fmt.Errorf("y: %w", a)), []string{"b.key", "a.key"}},
		{"in a problem", &problem.Problem{Err: b}, []string{"b.key"}},
		{"the outer one only", problem.OnSetting("c.key", a), []string{"c.key"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, se := range problem.SettingErrors(tc.err) {
				got = append(got, se.Key)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("SettingErrors = %v, want %v", got, tc.want)
			}
		})
	}
	if a.Error() != "a" {
		t.Errorf("text %q, want the wrapped error's", a.Error())
	}
}
