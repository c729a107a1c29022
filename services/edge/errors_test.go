package edge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
)

func TestFailureMapping(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status int
	}{
		{"no certificate", errNoCertificate, 403},
		{"no upstream", errNoUpstream, 503},
		{"short body", fmt.Errorf("%w: %w", errReadBody, io.ErrUnexpectedEOF), 400},
		{"identity down", &IdentityError{Unavailable: true, Err: errors.New("x")}, 503},
		{"identity no user", &IdentityError{Err: errors.New("x")}, 403},
		{"device gone", context.Canceled, 499},
		{"dial refused", &net.OpError{Op: "dial", Err: errors.New("refused")}, 502},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if f := failureOf(tt.err, 30); f.Status != tt.status {
				t.Fatalf("status %d, want %d", f.Status, tt.status)
			}
		})
	}
}
