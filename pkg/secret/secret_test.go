package secret

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestSecretNeverPrints(t *testing.T) {
	const pw = "hunter2-very-secret"
	s := New(pw)
	type holder struct {
		Password Secret `json:"password"`
	}
	var logBuf bytes.Buffer
	slog.New(slog.NewJSONHandler(&logBuf, nil)).Info("x", "pw", s, "h", holder{s})
	js, err := json.Marshal(holder{s})
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"%v":    fmt.Sprintf("%v", s),
		"%+v":   fmt.Sprintf("%+v", holder{s}),
		"%#v":   fmt.Sprintf("%#v", s),
		"%s":    fmt.Sprintf("%s", s),
		"%q":    fmt.Sprintf("%q", s),
		"%x":    fmt.Sprintf("%x", s),
		"Error": fmt.Errorf("bind with %v: %w", s, errors.New("boom")).Error(),
		"json":  string(js),
		"slog":  logBuf.String(),
	}
	for name, out := range outputs {
		t.Run(name, func(t *testing.T) {
			if strings.Contains(out, pw) {
				t.Fatalf("%s leaked the secret: %s", name, out)
			}
			if !strings.Contains(out, Mask) {
				t.Fatalf("%s does not show the mask: %s", name, out)
			}
		})
	}
	if s.Reveal() != pw {
		t.Fatalf("Reveal = %q", s.Reveal())
	}
}

func TestSecretJSONRoundTripAndZero(t *testing.T) {
	var h struct {
		P Secret `json:"p"`
	}
	if err := json.Unmarshal([]byte(`{"p":"abc"}`), &h); err != nil {
		t.Fatal(err)
	}
	if h.P.Reveal() != "abc" || h.P.IsZero() {
		t.Fatalf("got %q", h.P.Reveal())
	}
	if err := json.Unmarshal([]byte(`{"p":12}`), &h); err == nil {
		t.Fatal("a number was accepted as a secret")
	}
	var z Secret
	if z.String() != "" || !z.IsZero() {
		t.Fatalf("zero secret prints %q", z.String())
	}
}
