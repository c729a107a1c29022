package config

import (
	"fmt"
	"strings"

	"github.com/segmesh/segmesh/pkg/problem"
)

// Severity ranks a Problem (pkg/problem's).
type Severity = problem.Severity

// The severities.
const (
	// SeverityError stops segmesh from starting.
	SeverityError = problem.SeverityError
	// SeverityWarning is legal but suspicious; segmesh starts.
	SeverityWarning = problem.SeverityWarning
	// SeverityIgnored is a setting SEG ignores in this combination; so does segmesh.
	SeverityIgnored = problem.SeverityIgnored
)

// Problem is one finding about config.json: the key, the value, what rule
// it breaks and how to fix it. It is pkg/problem's type, which pkg/trust and
// every role's Validate return too.
type Problem = problem.Problem

// Report is everything Load found, in file order where it can tell.
type Report struct {
	// Problems holds errors, warnings and ignored settings.
	Problems []Problem
}

func (r *Report) add(sev Severity, key, value, msg, fix string) {
	r.Problems = append(r.Problems, Problem{Severity: sev, Key: key, Value: value, Message: msg, Fix: fix})
}

// Errors returns the problems of SeverityError.
func (r *Report) Errors() []Problem { return r.filter(SeverityError) }

// Warnings returns the problems of SeverityWarning.
func (r *Report) Warnings() []Problem { return r.filter(SeverityWarning) }

// Ignored returns the problems of SeverityIgnored.
func (r *Report) Ignored() []Problem { return r.filter(SeverityIgnored) }

func (r *Report) filter(s Severity) []Problem {
	var out []Problem
	for _, p := range r.Problems {
		if p.Severity == s {
			out = append(out, p)
		}
	}
	return out
}

// Error is returned by Load when config.json has errors; it lists them all.
type Error struct {
	// Path is the file.
	Path string
	// Problems are the errors (SeverityError only).
	Problems []Problem
}

// Error lists every problem, one per line.
func (e *Error) Error() string {
	var b strings.Builder
	if e.Path == "" {
		fmt.Fprintf(&b, "config has %d error(s):", len(e.Problems))
	} else {
		fmt.Fprintf(&b, "config: %s has %d error(s):", e.Path, len(e.Problems))
	}
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}

// ErrorOf returns an *Error listing the errors among problems (what `run`
// refuses and `config check` reports with the same words), or nil when
// there is none.
func ErrorOf(path string, problems []Problem) error {
	var errs []Problem
	for _, p := range problems {
		if p.Severity == SeverityError {
			errs = append(errs, p)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return &Error{Path: path, Problems: errs}
}

// FilePath returns the file c was read from, or "" for no configuration or
// one built in memory; nil-safe, for messages.
func (c *Config) FilePath() string {
	if c == nil {
		return ""
	}
	return c.Path
}
