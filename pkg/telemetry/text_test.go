package telemetry

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"
)

// sameAsSlog logs the same calls through the hand-written handler and
// through slog.TextHandler with Redact, and fails unless the bytes match.
func sameAsSlog(t *testing.T, use func(*slog.Logger)) string {
	t.Helper()
	var ours, theirs bytes.Buffer
	use(slog.New(fixedTime{newTextHandler(&ours, slog.LevelDebug)}))
	use(slog.New(fixedTime{slog.NewTextHandler(&theirs, &slog.HandlerOptions{Level: slog.LevelDebug, ReplaceAttr: Redact})}))
	if ours.String() != theirs.String() {
		t.Fatalf("output differs from slog.TextHandler\nours:   %q\nslog's: %q", ours.String(), theirs.String())
	}
	return ours.String()
}

// fixedTime stamps every record with one time, so two loggers' lines can
// be compared; a record without a time keeps none.
type fixedTime struct{ slog.Handler }

func (f fixedTime) Handle(ctx context.Context, r slog.Record) error {
	if !r.Time.IsZero() {
		r.Time = time.Date(2026, 11, 25, 16, 5, 21, 999600000, time.UTC)
	}
	return f.Handler.Handle(ctx, r)
}

func (f fixedTime) WithAttrs(as []slog.Attr) slog.Handler { return fixedTime{f.Handler.WithAttrs(as)} }
func (f fixedTime) WithGroup(name string) slog.Handler    { return fixedTime{f.Handler.WithGroup(name)} }

func TestTextHandlerMatchesSlog(t *testing.T) {
	when := time.Date(2026, 11, 25, 16, 5, 21, 123456789, time.FixedZone("x", 3600))
	tests := []struct {
		name string
		use  func(*slog.Logger)
	}{
		{"access line", func(l *slog.Logger) {
			rec := slog.NewRecord(when, slog.LevelInfo, "request", 0)
			rec.AddAttrs(slog.String("method", "POST"), slog.String("path", "/Microsoft-Server-ActiveSync"),
				slog.Int("status", 200), slog.Int64("bytes", 11), slog.Duration("duration", 1234567*time.Nanosecond),
				slog.String("upn", "alice@LAB.TEST"), slog.String("device_id", "DEV1"), slog.String("device_type", "iPhone"),
				slog.String("cmd", "Sync"), slog.Bool("ticket_cache_hit", true), slog.String("remote", "127.0.0.1:5555"))
			_ = l.Handler().Handle(context.Background(), rec)
		}},
		{"quoting", func(l *slog.Logger) {
			l.Info("a msg with spaces", "", "empty key", "eq", "a=b", "quote", `say "hi"`, "bs", `a\b`, "empty", "",
				"tab", "a\tb", "nl", "a\nb", "del", "a\x7fb", "uni", "grüße", "nbsp", "a\u00a0b", "bad", "a\xffb",
				"ctl", "\x01", "key with space", 1, "k=v", 2)
		}},
		{"kinds", func(l *slog.Logger) {
			l.Warn("kinds", "i", -42, "u", uint64(math.MaxUint64), "f", 3.25, "nan", math.NaN(), "inf", math.Inf(-1),
				"b", false, "d", 90*time.Second, "t", when, "zero", time.Time{})
		}},
		{"redaction", func(l *slog.Logger) {
			l.Error("secrets", "password", "hunter2", "Authorization", "Negotiate YII", "session_key", []byte{1},
				"token", "", "my_token_count", 3, "passcode", true)
		}},
		{"not plain: falls back", func(l *slog.Logger) {
			l.Info("mixed", "err", errors.New("boom"), "any", struct{ A int }{1}, slog.Group("g", "a", 1), "s", "x")
		}},
		{"with attrs", func(l *slog.Logger) {
			l.With("role", "edge", "n", 1).With("password", "x").Info("request", "upn", "bob")
			l.With("role", "edge").With("err", errors.New("e")).Info("request", "upn", "bob")
		}},
		{"groups", func(l *slog.Logger) {
			l.With("role", "edge").WithGroup("g").With("a", 1).Info("grouped", "b", 2)
			l.WithGroup("g").Info("grouped, no attrs")
			l.WithGroup("").Info("empty group", "a", 1)
		}},
		{"levels", func(l *slog.Logger) {
			l.Debug("d")
			l.Log(context.Background(), slog.LevelInfo+2, "custom")
			_ = l.Handler().Handle(context.Background(), slog.NewRecord(time.Time{}, slog.LevelInfo, "no time", 0))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if out := sameAsSlog(t, tc.use); out == "" {
				t.Fatal("no output")
			}
		})
	}
}

func TestTextHandlerLevelAndMask(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(newTextHandler(&buf, slog.LevelInfo))
	l.Debug("hidden")
	l.Info("shown", "password", "hunter2")
	out := buf.String()
	if strings.Contains(out, "hidden") || strings.Contains(out, "hunter2") || !strings.Contains(out, "password=") {
		t.Fatalf("level or mask wrong: %q", out)
	}
}

func FuzzTextHandlerMatchesSlog(f *testing.F) {
	f.Add("request", "upn", "alice@LAB.TEST", int64(200), 1.5, int64(time.Millisecond))
	f.Add("", "", "", int64(-1), math.Inf(1), int64(-5))
	f.Add("a b", "k=v", "\"\\\x00\xff\u2028", int64(0), math.Copysign(0, -1), int64(math.MaxInt64))
	f.Fuzz(func(t *testing.T, msg, key, val string, n int64, fl float64, d int64) {
		sameAsSlog(t, func(l *slog.Logger) {
			l.With(key, val).Info(msg, key, val, "n", n, "f", fl, "d", time.Duration(d), val, key)
		})
	})
}

func BenchmarkAccessLine(b *testing.B) {
	for _, tc := range []struct {
		name string
		h    slog.Handler
	}{
		{"telemetry", newTextHandler(io.Discard, slog.LevelInfo)},
		{"slog.TextHandler", slog.NewTextHandler(io.Discard, &slog.HandlerOptions{ReplaceAttr: Redact})},
	} {
		b.Run(tc.name, func(b *testing.B) {
			benchAccessLine(b, tc.h)
		})
	}
}

// benchAccessLine handles the edge's access-log record (the role attribute
// added once, as the edge's logger does) through h, b.N times.
func benchAccessLine(b *testing.B, h slog.Handler) {
	h = h.WithAttrs([]slog.Attr{slog.String("role", "edge")})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		rec := slog.NewRecord(time.Now(), slog.LevelInfo, "request", 0)
		rec.AddAttrs(slog.String("method", "POST"), slog.String("path", "/Microsoft-Server-ActiveSync"),
			slog.Int("status", 200), slog.Int64("bytes", 11), slog.Duration("duration", 1234567*time.Nanosecond),
			slog.String("upn", "user0042@LAB.TEST"), slog.String("device_id", "SEGLOAD0042"), slog.String("device_type", "iPhone"),
			slog.String("cmd", "Sync"), slog.Bool("ticket_cache_hit", true), slog.String("remote", "127.0.1.1:40312"))
		if err := h.Handle(ctx, rec); err != nil {
			b.Fatal(err)
		}
	}
}
