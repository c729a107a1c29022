package diagnose

import (
	"fmt"
	"io"
	"strings"
)

// Mark returns the symbol printed for a status: ✓, ✗ or –.
func Mark(s Status) string {
	switch s {
	case StatusPass:
		return "✓"
	case StatusFail:
		return "✗"
	}
	return "–"
}

// WriteStep prints one step as `segmesh diagnose` shows it: the mark, the
// title, the duration, then what it found, or for a failure the cause and
// the fix on their own lines.
func WriteStep(w io.Writer, r StepResult) error {
	dur := ""
	if r.Status != StatusSkip || r.DurationMS > 0 {
		dur = fmt.Sprintf(" (%s)", formatMS(r.DurationMS))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %-11s %s%s\n", Mark(r.Status), r.Name, r.Title, dur)
	switch r.Status {
	case StatusFail:
		fmt.Fprintf(&b, "    cause: %s\n", r.Cause)
		fmt.Fprintf(&b, "    fix:   %s\n", r.Fix)
	default:
		if r.Detail != "" {
			fmt.Fprintf(&b, "    %s\n", r.Detail)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteSummary prints the last line: all passed, or the step that failed.
func WriteSummary(w io.Writer, rep Report) error {
	var err error
	if rep.OK {
		_, err = fmt.Fprintf(w, "\nresult: every step passed (%s)\n", formatMS(rep.DurationMS))
	} else {
		_, err = fmt.Fprintf(w, "\nresult: FAILED at %s (%s)\n", rep.FailedStep, formatMS(rep.DurationMS))
	}
	return err
}

func formatMS(ms float64) string {
	switch {
	case ms >= 1000:
		return fmt.Sprintf("%.2f s", ms/1000)
	case ms >= 10:
		return fmt.Sprintf("%.0f ms", ms)
	}
	return fmt.Sprintf("%.1f ms", ms)
}
