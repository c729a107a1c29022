package main

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/etypeID"

	"github.com/segmesh/segmesh/pkg/negotiate"
	"github.com/segmesh/segmesh/pkg/negotiate/negotiatetest"
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

// TestExtendedProtectionRequire: with -extended-protection require the
// backend accepts a token bound to its certificate and refuses an unbound
// one, as IIS does.
func TestExtendedProtectionRequire(t *testing.T) {
	tk := negotiatetest.NewTicket(t, "HTTP/exchange.lab.test", "LAB.TEST", "Exch-Passw0rd!", "alice", etypeID.AES256_CTS_HMAC_SHA1_96)
	kt := tk.Keytab
	b, err := negotiate.New(tk.DER, tk.Key, tk.CName, tk.Realm, negotiate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var c counters
	o := handlerOptions{SPN: "HTTP/exchange.lab.test", EP: negotiatetest.Require, MaxHold: time.Second}
	srv := httptest.NewUnstartedServer(nil)
	srv.StartTLS()
	defer srv.Close()
	o.Cert = srv.Certificate()
	srv.Config.Handler = newHandler(kt, o, &c)
	for _, tc := range []struct {
		cb   negotiate.Binding
		want int
	}{{negotiate.TLSServerEndPoint(srv.Certificate()), 200}, {negotiate.Binding{}, 401}} {
		h, err := b.HeaderBound(tc.cb)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		req.Header.Set("Authorization", h)
		req.Header.Set("X-Authenticated-User", "mallory@LAB.TEST")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want || tc.want == 200 && string(body) != "alice@LAB.TEST\n" {
			t.Fatalf("binding %x: %d %q, want %d", tc.cb, resp.StatusCode, body, tc.want)
		}
	}
}

// TestHoldingCount: /_negbackend/holding reports the requests held now.
func TestHoldingCount(t *testing.T) {
	var c counters
	srv := httptest.NewServer(newHandler(nil, handlerOptions{Anonymous: true, MaxHold: time.Minute}, &c))
	defer srv.Close()
	holding := func() string {
		resp, err := http.Get(srv.URL + "/_negbackend/holding")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		_, _ = io.Copy(&b, resp.Body)
		return strings.TrimSpace(b.String())
	}
	if got := holding(); got != "0" {
		t.Fatalf("idle: %q", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/x?hold=60", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for holding() != "1" {
		if time.Now().After(deadline) {
			t.Fatalf("holding = %q with one request held", holding())
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	for holding() != "0" {
		if time.Now().After(deadline) {
			t.Fatalf("holding = %q after the request went away", holding())
		}
		time.Sleep(5 * time.Millisecond)
	}
}
