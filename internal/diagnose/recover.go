package diagnose

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"

	"github.com/segmesh/segmesh/pkg/telemetry"
)

// stepPanicError is a step that ended in a panic: segmesh's own code (a
// client or parser meeting a KDC's, the directory's or Exchange's reply it
// did not expect) failed, so the step is failed with code "panic" instead
// of ending segmesh diagnose with no report (TestAttackPanicInAStep).
type stepPanicError struct {
	step  string
	value string // cut by telemetry.PanicValue
}

func (e *stepPanicError) Error() string {
	return fmt.Sprintf("segmesh's own code failed in the %s step (a panic): %s", e.step, e.value)
}

// fixStepPanic is the fix of a stepPanicError.
const fixStepPanic = "a bug in segmesh, not in your configuration: report it to segmesh's maintainers with this report (segmesh diagnose --json) and what the server of this step answers; the gateway's roles recover the same panic and log it with its stack"

// recovered logs the panic p of what at error level with its stack to
// Options.Logger and returns its value cut as the gateway's panic lines
// cut it (telemetry.PanicValue).
func (st *state) recovered(what string, p any, attrs ...any) string {
	v := telemetry.PanicValue(p)
	st.opts.Logger.Error(what+" caused a panic; reported as a failure", append(attrs, "panic", v, "stack", string(debug.Stack()))...)
	return v
}

// runStep runs s; a panic in it is the step's failure (stepPanicError).
func (st *state) runStep(ctx context.Context, s step) (detail, skip string, err error) {
	defer func() {
		if p := recover(); p != nil {
			detail, skip, err = "", "", &stepPanicError{step: s.name, value: st.recovered("diagnose step", p, "step", s.name)}
		}
	}()
	return s.run(ctx, st)
}

// fixStep explains err with s's fix; a stepPanicError, or a panic in the
// fix itself (which reads what the step kept of the servers' replies), is
// code "panic" with fixStepPanic.
func (st *state) fixStep(s step, err error) (cause, fix, code string) {
	defer func() {
		if p := recover(); p != nil {
			pe := &stepPanicError{step: s.name, value: st.recovered("diagnose fix", p, "step", s.name)}
			cause, fix, code = pe.Error(), fixStepPanic, "panic"
		}
	}()
	if pe := (*stepPanicError)(nil); errors.As(err, &pe) {
		return pe.Error(), fixStepPanic, "panic"
	}
	return s.fix(st, err)
}
