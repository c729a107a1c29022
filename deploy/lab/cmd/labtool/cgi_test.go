package main

import (
	"encoding/json"
	"io"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestEchoHandler(t *testing.T) {
	tests := []struct {
		name       string
		url        string
		auth       []string
		body       string
		wantSchema []string
		wantOther  bool
		wantHold   time.Duration
	}{
		{name: "negotiate", url: "/Microsoft-Server-ActiveSync?Cmd=Sync", auth: []string{"Negotiate YIIx"},
			body: "hello", wantSchema: []string{"Negotiate"}},
		{name: "basic left in", url: "/EWS/Exchange.asmx", auth: []string{"Negotiate YIIx, Basic dXNlcjpw"},
			wantSchema: []string{"Negotiate", "Basic"}, wantOther: true},
		{name: "two headers", url: "/x", auth: []string{"Negotiate a", "basic b"},
			wantSchema: []string{"Negotiate", "basic"}, wantOther: true},
		{name: "hold", url: "/Microsoft-Server-ActiveSync?Cmd=Ping&hold=2.5", wantHold: 2500 * time.Millisecond},
		{name: "hold bounded", url: "/x?hold=999999", wantHold: maxHold * time.Second},
		{name: "hold nonsense", url: "/x?hold=-3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var slept time.Duration
			env := map[string]string{"REMOTE_USER": "alice@LAB.TEST", "AUTH_TYPE": "Negotiate", "HTTPS": "on"}
			h := echoHandler(func(k string) string { return env[k] }, func(d time.Duration) { slept += d }, io.Discard)
			req := httptest.NewRequest("POST", tt.url, strings.NewReader(tt.body))
			for _, a := range tt.auth {
				req.Header.Add("Authorization", a)
			}
			req.Header.Set("Cookie", "secret=1")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			var rep echoReply
			if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil {
				t.Fatalf("reply %q: %v", rec.Body.String(), err)
			}
			if rep.RemoteUser != "alice@LAB.TEST" || !rep.HTTPS || rep.Method != "POST" {
				t.Errorf("reply = %+v", rep)
			}
			if !slices.Equal(rep.AuthorizationSchemes, tt.wantSchema) || rep.OtherAuthorization != tt.wantOther {
				t.Errorf("schemes %v other %v, want %v %v", rep.AuthorizationSchemes, rep.OtherAuthorization, tt.wantSchema, tt.wantOther)
			}
			if rep.BodyLength != int64(len(tt.body)) {
				t.Errorf("body length %d, want %d", rep.BodyLength, len(tt.body))
			}
			if slept != tt.wantHold {
				t.Errorf("held %v, want %v", slept, tt.wantHold)
			}
			if strings.Contains(rec.Body.String(), "secret=1") || strings.Contains(rec.Body.String(), "YIIx") {
				t.Errorf("reply leaks a credential: %s", rec.Body.String())
			}
		})
	}
}
