package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
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
			h := echoHandler(func(k string) string { return env[k] }, func(d time.Duration) { slept += d }, t.TempDir(), io.Discard)
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

// TestEchoHandlerChosenAnswer covers the status, header, once and size
// parameters proxy tests use to make Exchange answer what they need.
func TestEchoHandlerChosenAnswer(t *testing.T) {
	dir := t.TempDir()
	h := echoHandler(func(string) string { return "alice@LAB.TEST" }, func(time.Duration) {}, dir, io.Discard)
	do := func(url string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", url, strings.NewReader("x")))
		return rec
	}
	tests := []struct {
		name       string
		url        string
		wantStatus int
		wantHeader http.Header
	}{
		{name: "449", url: "/x?status=449", wantStatus: 449},
		{name: "451 with location", url: "/x?status=451&header=X-MS-Location:https://mail2.lab.test/Microsoft-Server-ActiveSync",
			wantStatus: 451, wantHeader: http.Header{"X-Ms-Location": {"https://mail2.lab.test/Microsoft-Server-ActiveSync"}}},
		{name: "503 retry-after", url: "/x?status=503&header=Retry-After:%2017&header=X-A:b", wantStatus: 503,
			wantHeader: http.Header{"Retry-After": {"17"}, "X-A": {"b"}}},
		{name: "nonsense status", url: "/x?status=99", wantStatus: 200},
		{name: "bad once key", url: "/x?status=401&once=../x", wantStatus: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := do(tt.url)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d", rec.Code, tt.wantStatus)
			}
			for k, v := range tt.wantHeader {
				if got := rec.Header().Values(k); !slices.Equal(got, v) {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			var rep echoReply
			if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil || rep.BodyLength != 1 {
				t.Errorf("body %q (%v)", rec.Body.String(), err)
			}
		})
	}
	t.Run("once", func(t *testing.T) {
		var got []int
		for range 3 {
			got = append(got, do("/x?status=401&once=k1").Code)
		}
		got = append(got, do("/x?status=401&once=k2").Code)
		if want := []int{401, 200, 200, 401}; !slices.Equal(got, want) {
			t.Fatalf("statuses %v, want %v", got, want)
		}
	})
	t.Run("size", func(t *testing.T) {
		for _, n := range []int{0, 1, 250, 251, 16064, 100003} {
			rec := do("/x?size=" + strconv.Itoa(n))
			b := rec.Body.Bytes()
			want := make([]byte, n)
			for i := range want {
				want[i] = byte(i % 251)
			}
			if rec.Code != 200 || !bytes.Equal(b, want) || rec.Header().Get("Content-Length") != strconv.Itoa(n) {
				t.Fatalf("size=%d: status %d, %d bytes, Content-Length %q", n, rec.Code, len(b), rec.Header().Get("Content-Length"))
			}
		}
	})
}
