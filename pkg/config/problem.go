package config

import (
	"fmt"
	"strings"
)

// Severity ranks a Problem.
type Severity int

const (
	// SeverityError stops segmesh from starting.
	SeverityError Severity = iota
	// SeverityWarning is legal but suspicious; segmesh starts.
	SeverityWarning
	// SeverityIgnored is a setting SEG ignores in this combination; so does segmesh.
	SeverityIgnored
)

// String names the severity as printed by config check.
func (s Severity) String() string {
	switch s {
	case SeverityError:
		return "error"
	case SeverityWarning:
		return "warning"
	case SeverityIgnored:
		return "ignored"
	}
	return fmt.Sprintf("severity(%d)", int(s))
}

// Problem is one finding about config.json: the key, the value, what rule
// it breaks and how to fix it.
type Problem struct {
	// Severity says whether it stops the start.
	Severity Severity
	// Key is the setting, as a JSON path (kcd.domains[0].domain) or a dotted
	// custom gateway key (cert.mapping.ldap.url).
	Key string
	// Value is the offending value as written, masked for secrets; empty when
	// the value is missing.
	Value string
	// Message says what is wrong.
	Message string
	// Fix says what to do.
	Fix string
}

// String renders the problem on one line.
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.Severity.String())
	b.WriteString(": ")
	b.WriteString(p.Key)
	if p.Value != "" {
		fmt.Fprintf(&b, " = %q", p.Value)
	}
	b.WriteString(": ")
	b.WriteString(p.Message)
	if p.Fix != "" {
		b.WriteString("; fix: ")
		b.WriteString(p.Fix)
	}
	return b.String()
}

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
