package main

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestHandlerWithoutKeytab(t *testing.T) {
	good := "Negotiate " + base64.StdEncoding.EncodeToString(make([]byte, 120))
	tests := []struct {
		name       string
		opts       handlerOptions
		target     string
		authz      string
		wantStatus int
		wantBody   string
	}{
		{"anonymous answered", handlerOptions{Anonymous: true}, "/x", "", 200, "anonymous\n"},
		{"anonymous refused without the flag", handlerOptions{}, "/x", "", 401, ""},
		{"held Ping, bounded by MaxHold", handlerOptions{Anonymous: true, MaxHold: time.Millisecond}, "/x?hold=3600", "", 200, "anonymous\n"},
		{"bad hold", handlerOptions{Anonymous: true}, "/x?hold=soon", "", 400, ""},
		{"negative hold", handlerOptions{Anonymous: true}, "/x?hold=-1", "", 400, ""},
		{"Negotiate without keytab, verify all", handlerOptions{}, "/x", good, 401, ""},
		{"Negotiate checked for form only", handlerOptions{VerifyEvery: 1000}, "/x", good, 200, "anonymous\n"},
		{"malformed Negotiate refused even unverified", handlerOptions{VerifyEvery: 1000}, "/x", "Negotiate !!!not-base64", 401, ""},
		{"Basic refused", handlerOptions{VerifyEvery: 1000}, "/x", "Basic dXNlcjpwdw==", 401, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c counters
			h := newHandler(nil, tt.opts, &c)
			req := httptest.NewRequest(http.MethodPost, tt.target, strings.NewReader("body"))
			if tt.authz != "" {
				req.Header.Set("Authorization", tt.authz)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d (%s)", rec.Code, tt.wantStatus, rec.Body.String())
			}
			if tt.wantBody != "" && rec.Body.String() != tt.wantBody {
				t.Fatalf("body %q, want %q", rec.Body.String(), tt.wantBody)
			}
			if strings.Contains(tt.target, "hold=3600") && c.held.Load() != 1 {
				t.Fatalf("held counter %d, want 1", c.held.Load())
			}
		})
	}
}
