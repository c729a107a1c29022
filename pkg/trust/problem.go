package trust

import (
	"fmt"
	"strings"
)

// The configuration keys this package reads, in SEG's spelling.
const (
	// KeyPath is the setting naming the PEM files or the PFX.
	KeyPath = "clientCertTrustStorePath"
	// KeyPasscode is the setting holding the PFX password.
	KeyPasscode = "clientCertTrustStorePasscode"
	// KeyConsoleChain is the setting holding the console-uploaded client certificate chain.
	KeyConsoleChain = "clientCertificateChain"
)

// Severity ranks a Problem.
type Severity int

const (
	// SeverityError makes Load fail.
	SeverityError Severity = iota
	// SeverityWarning is legal but suspicious; the Store is built.
	SeverityWarning
)

// String returns "error" or "warning".
func (s Severity) String() string {
	if s == SeverityWarning {
		return "warning"
	}
	return "error"
}

// Problem is one finding about the trust-store settings or files: the setting, its value,
// what is wrong and how to fix it. Errors that Load returns are *Problem values (joined with
// errors.Join when there are several); find them with errors.As.
type Problem struct {
	// Severity says whether the Store can be built.
	Severity Severity
	// Key is the setting at fault: KeyPath, KeyPasscode or KeyConsoleChain.
	Key string
	// Value is the offending value or the one file of it at fault; a passcode is never
	// shown, only whether it is empty. Empty when the setting is unset.
	Value string
	// Message says what is wrong.
	Message string
	// Fix says what to do; empty when there is nothing to do.
	Fix string
	// Err is the underlying cause (for example pfx.ErrIncorrectPassword or an
	// *fs.PathError); nil when there is none.
	Err error
}

// Error renders the problem on one line with the package prefix:
// `trust: clientCertTrustStorePath "a.pem, b.pfx": names both ...; fix: ...`.
func (p *Problem) Error() string {
	var b strings.Builder
	b.WriteString("trust: ")
	if p.Severity == SeverityWarning {
		b.WriteString("warning: ")
	}
	b.WriteString(p.Key)
	if p.Value != "" {
		fmt.Fprintf(&b, " %q", p.Value)
	}
	b.WriteString(": ")
	b.WriteString(p.Message)
	if p.Fix != "" {
		b.WriteString("; fix: ")
		b.WriteString(p.Fix)
	}
	return b.String()
}

// Unwrap returns the underlying cause.
func (p *Problem) Unwrap() error { return p.Err }

// problems collects findings.
type problems []*Problem

func (ps *problems) add(sev Severity, key, value, msg, fix string, err error) {
	*ps = append(*ps, &Problem{Severity: sev, Key: key, Value: value, Message: msg, Fix: fix, Err: err})
}

func (ps problems) errors() []error {
	var out []error
	for _, p := range ps {
		if p.Severity == SeverityError {
			out = append(out, p)
		}
	}
	return out
}

func (ps problems) warnings() []Problem {
	var out []Problem
	for _, p := range ps {
		if p.Severity == SeverityWarning {
			out = append(out, *p)
		}
	}
	return out
}

// maskPasscode describes a passcode without revealing it.
func maskPasscode(s string) string {
	if s == "" {
		return ""
	}
	return "********"
}
