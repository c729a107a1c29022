package telemetry

import (
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"
	"unicode/utf8"
)

// MaxPanicValue bounds the bytes of a panic value a log line quotes
// (PanicValue): a parser's panic value may quote what a peer sent, of any
// length.
const MaxPanicValue = 512

// PanicValue returns v as text for the log, cut to MaxPanicValue bytes
// (at a character's start) with the length of the whole.
func PanicValue(v any) string {
	s := fmt.Sprint(v)
	if len(s) <= MaxPanicValue {
		return s
	}
	cut := MaxPanicValue
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s... (%d bytes in all, cut)", s[:cut], len(s))
}

// The default rate of the panic lines with a stack (PanicLog): the first
// PanicBurst in each PanicInterval.
const (
	PanicBurst    = 5
	PanicInterval = time.Minute
)

// PanicLog writes the error-level lines of recovered panics, with the
// value bounded (PanicValue) and a stack for only the first Burst panics
// in each Interval: a panic a device (or any peer) can trigger at will
// would otherwise write one stack per request, a log volume nobody chose.
// The others are still counted by their callers' metrics; the first line
// logged after them says how many were left out ("suppressed"). The rate
// is per PanicLog, shared by every site that writes through it. The zero
// value logs nothing; it is safe for concurrent use.
type PanicLog struct {
	log   *slog.Logger
	now   func() time.Time
	burst int
	every time.Duration

	mu         sync.Mutex
	start      time.Time // of the current interval
	logged     int       // lines with a stack in it
	suppressed int       // panics left out since the last line
}

// NewPanicLog writes to log (nil: nowhere) at the default rate, on now's
// clock (nil: time.Now).
func NewPanicLog(log *slog.Logger, now func() time.Time) *PanicLog {
	if now == nil {
		now = time.Now
	}
	return &PanicLog{log: log, now: now, burst: PanicBurst, every: PanicInterval}
}

// allow reports whether a panic now gets its line, and how many were left
// out before it.
func (p *PanicLog) allow() (bool, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if now := p.now(); p.start.IsZero() || now.Sub(p.start) >= p.every || now.Before(p.start) {
		p.start, p.logged = now, 0
	}
	if p.logged >= p.burst {
		p.suppressed++
		return false, 0
	}
	p.logged++
	n := p.suppressed
	p.suppressed = 0
	return true, n
}

// NoStack, as Log's stack, writes the line without one: the panic's stack
// was logged where it happened.
var NoStack = []byte{}

// Log writes msg at error level with attrs, the panic's value (bounded)
// and its stack (nil: the calling goroutine's, taken only when the line is
// written; NoStack: none), unless the rate is spent; it reports whether it
// wrote the line. A line after panics left out gives their number
// (suppressed).
func (p *PanicLog) Log(msg string, value any, stack []byte, attrs ...any) bool {
	if p == nil || p.log == nil {
		return false
	}
	ok, suppressed := p.allow()
	if !ok {
		return false
	}
	if stack == nil {
		stack = debug.Stack()
	}
	attrs = append(attrs[:len(attrs):len(attrs)], "panic", PanicValue(value))
	if len(stack) > 0 {
		attrs = append(attrs, "stack", string(stack))
	}
	if suppressed > 0 {
		p.log.Error("panics were counted but not logged: the log keeps the stacks of the first ones per interval",
			"suppressed", suppressed, "burst", p.burst, "interval", p.every)
	}
	p.log.Error(msg, attrs...)
	return true
}
