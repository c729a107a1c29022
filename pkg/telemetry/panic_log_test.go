package telemetry

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestPanicValue(t *testing.T) {
	tests := []struct {
		name   string
		in     any
		want   string // prefix
		cut    bool
		maxLen int
	}{
		{name: "short", in: "index out of range [3]", want: "index out of range [3]", maxLen: 22},
		{name: "exactly the bound", in: strings.Repeat("a", MaxPanicValue), want: strings.Repeat("a", MaxPanicValue), maxLen: MaxPanicValue},
		{name: "one over", in: strings.Repeat("a", MaxPanicValue+1), want: strings.Repeat("a", MaxPanicValue) + "...", cut: true, maxLen: MaxPanicValue + 40},
		{name: "a peer's megabyte", in: strings.Repeat("b", 1<<20), want: strings.Repeat("b", 100), cut: true, maxLen: MaxPanicValue + 40},
		{name: "cut inside a character", in: "a" + strings.Repeat("é", MaxPanicValue), want: "aé", cut: true, maxLen: MaxPanicValue + 40},
		{name: "an error", in: bytes.ErrTooLarge, want: bytes.ErrTooLarge.Error(), maxLen: 100},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := PanicValue(tc.in)
			if !strings.HasPrefix(got, tc.want) || len(got) > tc.maxLen || !utf8.ValidString(got) {
				t.Fatalf("PanicValue = %.80q... (%d bytes), want prefix %.40q, at most %d bytes, valid UTF-8", got, len(got), tc.want, tc.maxLen)
			}
			if strings.Contains(got, "cut") != tc.cut {
				t.Fatalf("PanicValue = %.80q..., cut %v", got, tc.cut)
			}
		})
	}
}

// TestPanicLogRate: the first PanicBurst panics of an interval are logged
// with their stack; the others not at all; the first line of a later
// interval is preceded by the count left out. A clock that goes back
// starts a new interval rather than muting the log.
func TestPanicLogRate(t *testing.T) {
	var logs bytes.Buffer
	now := time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)
	p := NewPanicLog(slog.New(slog.NewTextHandler(&logs, nil)), func() time.Time { return now })
	steps := []struct {
		advance time.Duration
		panics  int
		logged  int
		// suppressed is the count the first line of the step gives; 0: none.
		suppressed int
	}{
		{0, PanicBurst + 4, PanicBurst, 0},
		{PanicInterval / 2, 2, 0, 0},
		{PanicInterval / 2, 1, 1, 6},
		{PanicInterval - time.Nanosecond, 1, 1, 0},
		{-time.Hour, 1, 1, 0},
	}
	for i, st := range steps {
		now = now.Add(st.advance)
		logs.Reset()
		logged := 0
		for range st.panics {
			if p.Log("a device request caused a panic", "boom", nil, "path", "/x") {
				logged++
			}
		}
		out := logs.String()
		if logged != st.logged || strings.Count(out, "stack=") != st.logged {
			t.Fatalf("step %d: %d of %d panics logged (%d stacks), want %d:\n%s", i, logged, st.panics, strings.Count(out, "stack="), st.logged, out)
		}
		if st.logged > 0 && !strings.Contains(out, "goroutine ") {
			t.Fatalf("step %d: no stack of the caller:\n%s", i, out)
		}
		if has := strings.Contains(out, "suppressed="); has != (st.suppressed > 0) ||
			st.suppressed > 0 && !strings.Contains(out, "suppressed="+strconv.Itoa(st.suppressed)) {
			t.Fatalf("step %d: want suppressed=%d:\n%s", i, st.suppressed, out)
		}
	}
	// A stack given is logged as given; NoStack logs none; nil logs nothing.
	logs.Reset()
	now = now.Add(PanicInterval)
	p.Log("given", "v", []byte("goroutine 9 [running]:"))
	p.Log("none", "v", NoStack)
	var none *PanicLog
	if none.Log("x", "v", nil) {
		t.Fatal("a nil PanicLog logged")
	}
	if out := logs.String(); !strings.Contains(out, `msg=given panic=v stack="goroutine 9 [running]:"`) || !strings.Contains(out, "msg=none panic=v\n") {
		t.Fatalf("given and no stack:\n%s", out)
	}
}

// TestPanicLogCutsWhatAPeerSent (ipanic3, attacker review item c): the
// panic's value was cut to MaxPanicValue bytes, but the line's attributes
// were written whole, and a device chooses some of them: the request's
// path (up to the edge's 64 KiB of headers), its device_id, the UPN it
// asked a ticket for. On main each came out whole (the first case failed
// with a path of 61469 bytes). Now every string attribute is cut as the
// value is (cutText); other values and the keys are kept.
func TestPanicLogCutsWhatAPeerSent(t *testing.T) {
	long := strings.Repeat("a", 60<<10)
	tests := []struct {
		name  string
		attrs []any
		key   string
		cut   bool
	}{
		{"a request's path", []any{"method", "GET", "path", "/Microsoft-Server-ActiveSync/" + long}, "path", true},
		{"a device ID", []any{AttrUPN, "mallory@lab.test", AttrDeviceID, long}, AttrDeviceID, true},
		{"a slog.Attr", []any{slog.String(AttrUPN, long+"@lab.test")}, AttrUPN, true},
		{"a short value is kept", []any{"path", "/Microsoft-Server-ActiveSync"}, "path", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			line, _ := panicLine(t, tc.attrs...)
			got, _ := line[tc.key].(string)
			if len(got) > MaxPanicValue+40 || strings.Contains(got, "cut") != tc.cut || !utf8.ValidString(got) {
				t.Fatalf("%s is %d bytes (%.60q...), want at most %d, cut %v", tc.key, len(got), got, MaxPanicValue+40, tc.cut)
			}
			if tc.cut && !strings.Contains(got, "bytes in all, cut") {
				t.Fatalf("%s does not say it was cut: %.60q...", tc.key, got)
			}
		})
	}
}

// longStringer is a value whose text is what a peer sent.
type longStringer string

func (s longStringer) String() string { return string(s) }

// longValuer is a slog.LogValuer whose value is what a peer sent.
type longValuer string

func (s longValuer) LogValue() slog.Value { return slog.StringValue(string(s)) }

// TestAttackPanicLogCutsEveryKind (rvpanic3, review of cda5320): cutAttrs
// cut a string value and a string slog.Attr only; an error, a []byte, a
// fmt.Stringer, a slog.LogValuer or a group carrying what a peer sent was
// written whole (on main every row failed: lines of 61 to 82 KB). Every
// value whose text is longer than MaxPanicValue is now cut; short ones
// keep their kind, and a Secret-like LogValuer is resolved
// before, so its redaction stands.
func TestAttackPanicLogCutsEveryKind(t *testing.T) {
	long := strings.Repeat("a", 60<<10)
	tests := []struct {
		name  string
		attrs []any
		path  []string // the keys to the value in the JSON line
	}{
		{"an error", []any{"err", errors.New("parse " + long)}, []string{"err"}},
		{"a []byte", []any{"body", []byte(long)}, []string{"body"}},
		{"a fmt.Stringer", []any{"url", longStringer(long)}, []string{"url"}},
		{"a slog.LogValuer", []any{"who", longValuer(long)}, []string{"who"}},
		{"a slog.Any error", []any{slog.Any("err", errors.New(long))}, []string{"err"}},
		{"a group", []any{slog.Group("req", "path", long, "n", 3)}, []string{"req", "path"}},
		{"a struct", []any{"req", struct{ Path string }{long}}, []string{"req"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			line, n := panicLine(t, tc.attrs...)
			if n > 4*MaxPanicValue {
				t.Fatalf("a line of %d bytes", n)
			}
			var v any = line
			for _, k := range tc.path {
				m, _ := v.(map[string]any)
				v = m[k]
			}
			if s, _ := v.(string); !strings.Contains(s, "bytes in all, cut") {
				t.Fatalf("%v is %.80v..., want the text cut", tc.path, v)
			}
		})
	}
}

// TestPanicLogKeepsShortValues: values within MaxPanicValue keep their
// kind (a number, a group, an error's text), and a LogValuer is resolved
// (a secret's redaction is what is written).
func TestPanicLogKeepsShortValues(t *testing.T) {
	line, _ := panicLine(t, "n", 7, "err", errors.New("eof"), "who", longValuer("[redacted]"), slog.Group("req", "path", "/x"))
	req, _ := line["req"].(map[string]any)
	if line["n"] != float64(7) || line["err"] != "eof" || line["who"] != "[redacted]" || req["path"] != "/x" {
		t.Fatalf("line %v", line)
	}
}

// panicLine logs a panic "boom" with attrs through a PanicLog writing JSON
// and returns the line's fields and its length.
func panicLine(t *testing.T, attrs ...any) (map[string]any, int) {
	t.Helper()
	var logs bytes.Buffer
	p := NewPanicLog(slog.New(slog.NewJSONHandler(&logs, nil)), nil)
	if !p.Log("a device request caused a panic", "boom", NoStack, attrs...) {
		t.Fatal("not logged")
	}
	var line map[string]any
	if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
		t.Fatalf("%v: %.200s", err, logs.String())
	}
	if line["panic"] != "boom" {
		t.Fatalf("panic = %v", line["panic"])
	}
	return line, logs.Len()
}
