package telemetry

import (
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/segmesh/segmesh/pkg/secret"
)

// sensitiveKeyParts are substrings of attribute keys whose values are always
// masked, whatever their type: the one redaction rule.
var sensitiveKeyParts = []string{"password", "passcode", "secret", "session_key", "sessionkey", "ticket_der", "token", "authorization", "private", "keytab", "cookie"}

// IsSensitiveKey reports whether values logged under key are masked.
func IsSensitiveKey(key string) bool {
	k := strings.ToLower(key)
	for _, p := range sensitiveKeyParts {
		if strings.Contains(k, p) {
			return true
		}
	}
	return false
}

// Redact is a slog ReplaceAttr function applying the redaction rule.
func Redact(_ []string, a slog.Attr) slog.Attr {
	if IsSensitiveKey(a.Key) && a.Value.Kind() != slog.KindGroup {
		if a.Value.Kind() == slog.KindString && a.Value.String() == "" {
			return a
		}
		return slog.String(a.Key, secret.Mask)
	}
	return a
}

// NewLogger returns a logger writing to w in format ("text" or "json") at
// level ("debug", "info", "warn", "error") with the redaction rule applied.
func NewLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	lv, err := ParseLevel(level)
	if err != nil {
		return nil, err
	}
	return NewLoggerAt(w, lv, format)
}

// ParseLevel reads segmesh.telemetry.logLevel ("debug", "info", "warn",
// "error").
func ParseLevel(level string) (slog.Level, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return 0, fmt.Errorf("telemetry: log level %q (segmesh.telemetry.logLevel; want debug, info, warn or error): %w", level, err)
	}
	return lv, nil
}

// NewLoggerAt is NewLogger at a Leveler: with a *slog.LevelVar the level
// changes live (a reloaded configuration) without a new logger.
func NewLoggerAt(w io.Writer, lv slog.Leveler, format string) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: lv, ReplaceAttr: Redact}
	switch format {
	case "", "text":
		return slog.New(newTextHandler(w, lv)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("telemetry: log format %q: want text or json", format)
}
