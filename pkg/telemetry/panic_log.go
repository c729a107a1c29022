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
// (PanicValue), and of each string attribute of a PanicLog line: a
// parser's panic value may quote what a peer sent, of any length, and a
// device chooses a request's path and its device ID.
const MaxPanicValue = 512

// PanicValue returns v as text for the log, cut to MaxPanicValue bytes
// (at a character's start) with the length of the whole.
func PanicValue(v any) string { return cutText(fmt.Sprint(v)) }

// cutText cuts s to MaxPanicValue bytes (at a character's start) and says
// how long the whole was: the one way a panic line bounds what a peer
// sent, its value (PanicValue) and its attributes (cutAttrs) alike.
func cutText(s string) string {
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
// value and the attributes bounded (PanicValue, cutAttrs) and a stack for only the first Burst panics
// in each Interval: a panic a device (or any peer) can trigger at will
// would otherwise write one stack per request, a log volume nobody chose.
// The others are still counted by their callers' metrics; the first line
// logged after them says how many were left out ("suppressed"). The rate
// is per kind of panic: the message of the site (Log), with the task for
// a PanicReport. Shared by every site of a PanicLog, one site's flood (a
// panic a device triggers at will) spent the rate of all, and the first
// panic of another kind in that interval (the revocation stream's, whose
// /readyz note points at its line, a handshake's, a shared call's) got no
// line at all (TestAttackPanicFloodHidesAnotherFailure). The zero value
// logs nothing; it is safe for concurrent use.
type PanicLog struct {
	log   *slog.Logger
	now   func() time.Time
	burst int
	every time.Duration

	mu         sync.Mutex
	kinds      map[string]*panicRate // by kind (the site's message, and task)
	suppressed int                   // panics left out since the last line
}

// panicRate is the rate of one kind of panic: the lines with a stack
// written in its current interval.
type panicRate struct {
	start  time.Time // of the current interval
	logged int
}

// maxPanicKinds bounds the kinds a PanicLog rates apart. Kinds are the
// constant messages and tasks of the sites that log, a handful; past the
// bound (a message built from a value, by mistake) the others share one
// rate rather than grow the map.
const maxPanicKinds = 64

// NewPanicLog writes to log (nil: nowhere) at the default rate, on now's
// clock (nil: time.Now).
func NewPanicLog(log *slog.Logger, now func() time.Time) *PanicLog {
	if now == nil {
		now = time.Now
	}
	return &PanicLog{log: log, now: now, burst: PanicBurst, every: PanicInterval}
}

// allow reports whether a panic of kind now gets its line, and how many
// (of any kind) were left out before it.
func (p *PanicLog) allow(kind string) (bool, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.kinds == nil {
		p.kinds = make(map[string]*panicRate)
	}
	k := p.kinds[kind]
	if k == nil {
		if len(p.kinds) >= maxPanicKinds {
			kind = ""
		}
		if k = p.kinds[kind]; k == nil {
			k = &panicRate{}
			p.kinds[kind] = k
		}
	}
	if now := p.now(); k.start.IsZero() || now.Sub(k.start) >= p.every || now.Before(k.start) {
		k.start, k.logged = now, 0
	}
	if k.logged >= p.burst {
		p.suppressed++
		return false, 0
	}
	k.logged++
	n := p.suppressed
	p.suppressed = 0
	return true, n
}

// cutAttrs returns a copy of attrs, slog's key-value pairs and slog.Attr
// values, with each value cut by cutValue: a request's path, a device ID,
// a UPN, an error quoting a reply are what a peer sent. Keys are kept.
func cutAttrs(attrs []any) []any {
	out := make([]any, 0, len(attrs)+4) // and the panic, the stack
	for i := 0; i < len(attrs); i++ {
		switch a := attrs[i].(type) {
		case slog.Attr:
			a.Value = cutValue(a.Value)
			out = append(out, a)
		case string: // a key; its value follows
			out = append(out, a)
			if i+1 < len(attrs) {
				i++
				out = append(out, cutValue(slog.AnyValue(attrs[i])))
			}
		default:
			out = append(out, a)
		}
	}
	return out
}

// cutValue returns v resolved (a slog.LogValuer's own value, so a secret's
// redaction stands) with its text cut by cutText: a string always, a
// group's values one by one, any other value (an error, a []byte, a
// fmt.Stringer, a struct) when its text is longer than MaxPanicValue, as
// the cut text. Numbers, times and short values keep their kind
// (TestAttackPanicLogCutsEveryKind).
func cutValue(v slog.Value) slog.Value {
	v = v.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.StringValue(cutText(v.String()))
	case slog.KindGroup:
		g := v.Group()
		out := make([]slog.Attr, len(g))
		for i, a := range g {
			out[i] = slog.Attr{Key: a.Key, Value: cutValue(a.Value)}
		}
		return slog.GroupValue(out...)
	case slog.KindAny:
		if s, ok := textOf(v.Any()); ok && len(s) > MaxPanicValue {
			return slog.StringValue(cutText(s))
		}
	}
	return v
}

// textOf returns the text a log handler would write for x; ok is false
// for nil or when producing it panics (a nil pointer's String method):
// the handler then writes x as it does.
func textOf(x any) (s string, ok bool) {
	defer func() {
		if recover() != nil {
			s, ok = "", false
		}
	}()
	switch x := x.(type) {
	case nil:
		return "", false
	case error:
		return x.Error(), true
	case []byte:
		return string(x), true
	case fmt.Stringer:
		return x.String(), true
	default:
		return fmt.Sprintf("%+v", x), true
	}
}

// NoStack, as Log's stack, writes the line without one: the panic's stack
// was logged where it happened.
var NoStack = []byte{}

// Log writes msg at error level with attrs (each value bounded as the
// value is, cutValue), the panic's value (bounded) and its stack (nil: the calling goroutine's, taken only when the line is
// written; NoStack: none), unless the rate of msg's panics is spent; it
// reports whether it wrote the line. msg names the site, a constant: each
// has its own rate. A line after panics left out gives their number
// (suppressed).
func (p *PanicLog) Log(msg string, value any, stack []byte, attrs ...any) bool {
	return p.logKind(msg, msg, value, stack, attrs...)
}

// logKind is Log rated as kind, a constant of the site (maxPanicKinds).
func (p *PanicLog) logKind(kind, msg string, value any, stack []byte, attrs ...any) bool {
	if p == nil || p.log == nil {
		return false
	}
	ok, suppressed := p.allow(kind)
	if !ok {
		return false
	}
	if stack == nil {
		stack = debug.Stack()
	}
	attrs = append(cutAttrs(attrs), "panic", PanicValue(value))
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
