// Package problem is the one finding type of every configuration validator:
// pkg/config's rules, pkg/trust's store checks and each role's Validate
// return Problems, so `config check`, `segmesh run` and the status page
// print them alike and no caller converts one kind into another.
package problem

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

// Problem is one finding about the configuration: the key, the value, what
// rule it breaks and how to fix it. A *Problem is an error.
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
	// Fix says what to do; empty when there is nothing to do.
	Fix string
	// Package is the pkg/ package that found it (for example "trust"), the
	// prefix of Error; empty for pkg/config's rules and the roles' checks.
	Package string
	// Err is the underlying cause (for example an *fs.PathError); nil when
	// there is none. It is not printed: Message says it in words.
	Err error
}

// String renders the problem on one line, as config check prints it:
// `error: key = "value": message; fix: fix`.
func (p Problem) String() string {
	return p.Severity.String() + ": " + p.body()
}

// Error renders the problem as an error: the package prefix, the severity
// when it is not an error, then `key = "value": message; fix: fix`.
func (p *Problem) Error() string {
	var b strings.Builder
	if p.Package != "" {
		b.WriteString(p.Package + ": ")
	}
	if p.Severity != SeverityError {
		b.WriteString(p.Severity.String() + ": ")
	}
	b.WriteString(p.body())
	return b.String()
}

// Unwrap returns the underlying cause.
func (p *Problem) Unwrap() error { return p.Err }

// Same reports whether q says what p says (Err aside): validators that
// read the same setting report it once.
func (p Problem) Same(q Problem) bool {
	return p.Severity == q.Severity && p.Key == q.Key && p.Value == q.Value && p.Message == q.Message && p.Fix == q.Fix
}

func (p Problem) body() string {
	var b strings.Builder
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

// SettingError is a constructor's refusal of one setting's value: Key names
// the setting as config.json does, Err says why in the constructor's words.
// A role's Validate files it under Key (role.BuildProblem) whatever Err's
// text holds, so rewording Err, or a value that quotes another key, cannot
// move it to another setting.
type SettingError struct {
	// Key is the setting, as config.json names it.
	Key string
	// Err is the refusal; the SettingError's text is its text.
	Err error
}

// Error returns Err's text.
func (e *SettingError) Error() string { return e.Err.Error() }

// Unwrap returns Err.
func (e *SettingError) Unwrap() error { return e.Err }

// OnSetting returns err as a *SettingError on key.
func OnSetting(key string, err error) error { return &SettingError{Key: key, Err: err} }

// SettingErrors returns every *SettingError in err's tree (through Unwrap
// of one error and of several), outermost first; none is looked into.
func SettingErrors(err error) []*SettingError {
	var out []*SettingError
	var walk func(error)
	walk = func(e error) {
		switch x := e.(type) {
		case nil:
		case *SettingError:
			out = append(out, x)
		case interface{ Unwrap() []error }:
			for _, c := range x.Unwrap() {
				walk(c)
			}
		case interface{ Unwrap() error }:
			walk(x.Unwrap())
		}
	}
	walk(err)
	return out
}
