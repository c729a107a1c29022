package secret

import (
	"encoding/json"
	"fmt"
	"log/slog"
)

// Mask is what a non-empty Secret prints as.
const Mask = "[REDACTED]"

// Secret is a credential read from configuration. Its zero value is the
// empty secret. Only Reveal returns the value; every printing path masks it.
type Secret struct {
	v string
}

// New wraps a value as a Secret.
func New(v string) Secret { return Secret{v: v} }

// Reveal returns the value. Call it only where the credential is used.
func (s Secret) Reveal() string { return s.v }

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s.v == "" }

// String returns the mask, or "" for an empty secret.
func (s Secret) String() string {
	if s.v == "" {
		return ""
	}
	return Mask
}

// Format makes every fmt verb (%v, %+v, %#v, %s, %q, %x) print the mask.
func (s Secret) Format(f fmt.State, verb rune) {
	switch verb {
	case 'q':
		fmt.Fprintf(f, "%q", s.String())
	default:
		_, _ = f.Write([]byte(s.String()))
	}
}

// GoString masks the value for %#v.
func (s Secret) GoString() string { return s.String() }

// LogValue masks the value in slog output.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalJSON writes the mask, never the value.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// MarshalText writes the mask, never the value.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalJSON reads a JSON string as the secret's value.
func (s *Secret) UnmarshalJSON(b []byte) error {
	var v string
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("secret: want a JSON string: %w", err)
	}
	s.v = v
	return nil
}
