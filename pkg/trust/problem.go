package trust

import "github.com/segmesh/segmesh/pkg/problem"

// The configuration keys this package reads, in SEG's spelling.
const (
	// KeyPath is the setting naming the PEM files or the PFX.
	KeyPath = "clientCertTrustStorePath"
	// KeyPasscode is the setting holding the PFX password.
	KeyPasscode = "clientCertTrustStorePasscode"
	// KeyConsoleChain is the setting holding the console-uploaded client certificate chain.
	KeyConsoleChain = "clientCertificateChain"
)

// Severity ranks a Problem (pkg/problem's).
type Severity = problem.Severity

const (
	// SeverityError makes Load fail.
	SeverityError = problem.SeverityError
	// SeverityWarning is legal but suspicious; the Store is built.
	SeverityWarning = problem.SeverityWarning
)

// Problem is one finding about the trust-store settings or files: the setting, its value,
// what is wrong and how to fix it; pkg/problem's type, as pkg/config's, so `config check`
// prints it unchanged. Errors that Load returns are *Problem values (joined with
// errors.Join when there are several), their Package "trust"; find them with errors.As.
// A passcode is never shown as Value, only whether it is empty.
type Problem = problem.Problem

// problems collects findings.
type problems []*Problem

func (ps *problems) add(sev Severity, key, value, msg, fix string, err error) {
	*ps = append(*ps, &Problem{Severity: sev, Key: key, Value: value, Message: msg, Fix: fix, Package: "trust", Err: err})
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
