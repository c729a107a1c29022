package telemetry

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/segmesh/segmesh/pkg/secret"
)

// textHandler writes slog's text format with the redaction rule, byte for
// byte what slog.TextHandler with ReplaceAttr Redact writes, but formats the
// common record by hand: one whose attributes are plain values (strings,
// numbers, booleans, durations, times) and that is in no group. Anything else
// (groups, errors and other Any values, LogValuers, empty keys) goes to the
// wrapped slog.TextHandler. Every edge request writes one such line (the
// access log); slog's generic path spent most of its time on ReplaceAttr
// calls, the attribute walk and the redaction rule's key scan.
type textHandler struct {
	slow  slog.Handler // slog.TextHandler with the same options and attributes
	sink  *textSink
	level slog.Leveler
	// pre holds the attributes added by WithAttrs, formatted (" k=v" each).
	pre []byte
	// fast reports whether records may take the hand-written path: false
	// once a group was opened.
	fast bool
}

// textSink is what every handler derived from one NewLogger shares: the
// writer (one lock for both paths, so lines never interleave), the line
// buffers and the redaction rule's answers per key.
type textSink struct {
	mu   sync.Mutex
	w    io.Writer
	bufs sync.Pool // *[]byte
	// sensitive caches IsSensitiveKey per key (string → bool), at most
	// maxSensitiveCache keys: keys are constants in practice.
	sensitive sync.Map
	cached    atomic.Int32
}

const maxSensitiveCache = 512

// Write writes one formatted line under the lock; the slow path's
// slog.TextHandler writes through it too.
func (s *textSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (s *textSink) isSensitive(key string) bool {
	if v, ok := s.sensitive.Load(key); ok {
		return v.(bool)
	}
	v := IsSensitiveKey(key)
	if s.cached.Load() < maxSensitiveCache {
		s.cached.Add(1)
		s.sensitive.Store(key, v)
	}
	return v
}

func newTextHandler(w io.Writer, level slog.Leveler) *textHandler {
	sink := &textSink{w: w}
	sink.bufs.New = func() any { b := make([]byte, 0, 1024); return &b }
	return &textHandler{
		slow:  slog.NewTextHandler(sink, &slog.HandlerOptions{Level: level, ReplaceAttr: Redact}),
		sink:  sink,
		level: level,
		fast:  true,
	}
}

// Enabled reports whether l is at or above the handler's level.
func (h *textHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.level.Level()
}

// WithAttrs returns a handler that adds as to every line.
func (h *textHandler) WithAttrs(as []slog.Attr) slog.Handler {
	if len(as) == 0 {
		return h
	}
	n := &textHandler{slow: h.slow.WithAttrs(as), sink: h.sink, level: h.level, fast: h.fast}
	if n.fast && plainAttrs(as) {
		n.pre = append([]byte(nil), h.pre...)
		for _, a := range as {
			n.pre = h.appendAttr(n.pre, a)
		}
	} else {
		n.fast = false
	}
	return n
}

// WithGroup returns a handler that qualifies later keys with name.
func (h *textHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &textHandler{slow: h.slow.WithGroup(name), sink: h.sink, level: h.level}
}

// Handle writes one line.
func (h *textHandler) Handle(ctx context.Context, r slog.Record) error {
	if !h.fast || !plainRecord(r) {
		return h.slow.Handle(ctx, r)
	}
	bp := h.sink.bufs.Get().(*[]byte)
	b := (*bp)[:0]
	if !r.Time.IsZero() {
		b = append(b, "time="...)
		b = appendRFC3339Millis(b, r.Time.Round(0))
		b = append(b, ' ')
	}
	b = append(b, "level="...)
	b = appendText(b, r.Level.String())
	b = append(b, " msg="...)
	b = appendText(b, r.Message)
	b = append(b, h.pre...)
	r.Attrs(func(a slog.Attr) bool {
		b = h.appendAttr(b, a)
		return true
	})
	b = append(b, '\n')
	_, err := h.sink.Write(b)
	if cap(b) <= 16<<10 { // do not keep a rare huge line's buffer
		*bp = b[:0]
		h.sink.bufs.Put(bp)
	}
	return err
}

// appendAttr appends " key=value" for a plain attribute, masked when the
// key is sensitive (as Redact does: an empty string stays empty).
func (h *textHandler) appendAttr(b []byte, a slog.Attr) []byte {
	b = append(b, ' ')
	b = appendText(b, a.Key)
	b = append(b, '=')
	v := a.Value
	if h.sink.isSensitive(a.Key) && (v.Kind() != slog.KindString || v.String() != "") {
		return appendText(b, secret.Mask)
	}
	switch v.Kind() {
	case slog.KindString:
		return appendText(b, v.String())
	case slog.KindInt64:
		return strconv.AppendInt(b, v.Int64(), 10)
	case slog.KindUint64:
		return strconv.AppendUint(b, v.Uint64(), 10)
	case slog.KindBool:
		return strconv.AppendBool(b, v.Bool())
	case slog.KindFloat64:
		return strconv.AppendFloat(b, v.Float64(), 'g', -1, 64)
	case slog.KindDuration:
		return append(b, v.Duration().String()...)
	case slog.KindTime:
		return appendRFC3339Millis(b, v.Time())
	}
	return b // unreachable: plainAttr admits only the kinds above
}

func plainRecord(r slog.Record) bool {
	ok := true
	r.Attrs(func(a slog.Attr) bool {
		ok = plainAttr(a)
		return ok
	})
	return ok
}

func plainAttrs(as []slog.Attr) bool {
	for _, a := range as {
		if !plainAttr(a) {
			return false
		}
	}
	return true
}

// plainAttr reports whether the hand-written path formats a exactly as
// slog.TextHandler would.
func plainAttr(a slog.Attr) bool {
	if a.Key == "" {
		return false
	}
	switch a.Value.Kind() {
	case slog.KindString, slog.KindInt64, slog.KindUint64, slog.KindBool, slog.KindFloat64, slog.KindDuration, slog.KindTime:
		return true
	}
	return false
}

// appendText appends s as slog's text handler does: bare when it needs no
// quoting, else Go-quoted.
func appendText(b []byte, s string) []byte {
	if needsQuoting(s) {
		return strconv.AppendQuote(b, s)
	}
	return append(b, s...)
}

// needsQuoting is log/slog's rule (text_handler.go): empty strings, spaces,
// '=', '"', control characters, and what JSON would escape (except '\'),
// invalid UTF-8 and non-printing or space runes.
func needsQuoting(s string) bool {
	if len(s) == 0 {
		return true
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c != '\\' && (c == ' ' || c == '=' || !safeASCII(c)) {
				return true
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return true
		}
		i += size
	}
	return false
}

// safeASCII reports whether the ASCII byte c may stand in a JSON string
// unescaped (log/slog's safeSet): anything from ' ' up, DEL included,
// except '"' and '\'.
func safeASCII(c byte) bool {
	return c >= 0x20 && c != '"' && c != '\\'
}

// appendRFC3339Millis is slog's time format: RFC 3339 with exactly three
// fractional digits (log/slog handler.go).
func appendRFC3339Millis(b []byte, t time.Time) []byte {
	const prefixLen = len("2006-01-02T15:04:05.000")
	n := len(b)
	t = t.Truncate(time.Millisecond).Add(time.Millisecond / 10)
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b[:n+prefixLen], b[n+prefixLen+1:]...)
}
