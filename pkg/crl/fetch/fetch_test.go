package fetch_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmesh/segmesh/pkg/crl"
	"github.com/segmesh/segmesh/pkg/crl/crltest"
	"github.com/segmesh/segmesh/pkg/crl/fetch"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func kindOf(err error) crl.Kind {
	var e *crl.Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}

func TestFetch(t *testing.T) {
	ca := crltest.NewCA(t, "Fetch CA", t0)
	der := ca.CRL(t, crltest.CRLOptions{ThisUpdate: t0})
	const etag = `"v1"`
	lastMod := t0.Format(http.TimeFormat)
	mux := http.NewServeMux()
	mux.HandleFunc("/der", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", etag)
		w.Header().Set("Last-Modified", lastMod)
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		_, _ = w.Write(der)
	})
	mux.HandleFunc("/lastmod", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("If-Modified-Since") == lastMod {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Last-Modified", lastMod)
		_, _ = w.Write(der)
	})
	mux.HandleFunc("/just-modified", func(w http.ResponseWriter, r *http.Request) {
		now := time.Now().UTC().Format(http.TimeFormat)
		w.Header().Set("Date", now)
		w.Header().Set("Last-Modified", now) // weak: same second as the response
		_, _ = w.Write(der)
	})
	mux.HandleFunc("/pem", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(crltest.PEM(der)) })
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/der", http.StatusFound) })
	mux.HandleFunc("/redirect-ftp", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "ftp://pki.example.com/ca.crl", http.StatusFound)
	})
	mux.HandleFunc("/big-declared", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "2000")
		_, _ = w.Write(make([]byte, 2000))
	})
	mux.HandleFunc("/big-chunked", func(w http.ResponseWriter, r *http.Request) {
		for range 20 {
			_, _ = w.Write(make([]byte, 100))
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("/bogus304", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNotModified) })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL + "/x.crl"
	down.Close()

	f := &fetch.Fetcher{MaxBytes: 1000, Timeout: 5 * time.Second}
	tests := []struct {
		name         string
		url          string
		prev         fetch.Validators
		timeout      time.Duration
		wantBody     []byte
		notModified  bool
		wantKind     crl.Kind
		wantErrMatch string
		wantV        fetch.Validators
	}{
		{name: "DER", url: "/der", wantBody: der, wantV: fetch.Validators{ETag: etag, LastModified: lastMod}},
		{name: "PEM as sent", url: "/pem", wantBody: crltest.PEM(der)},
		{name: "ETag 304", url: "/der", prev: fetch.Validators{ETag: etag}, notModified: true, wantV: fetch.Validators{ETag: etag, LastModified: lastMod}},
		{name: "ETag changed", url: "/der", prev: fetch.Validators{ETag: `"v0"`}, wantBody: der, wantV: fetch.Validators{ETag: etag, LastModified: lastMod}},
		{name: "If-Modified-Since 304", url: "/lastmod", prev: fetch.Validators{LastModified: lastMod}, notModified: true, wantV: fetch.Validators{LastModified: lastMod}},
		{name: "Last-Modified within a second of Date is not a validator", url: "/just-modified", wantBody: der, wantV: fetch.Validators{}},
		{name: "redirect", url: "/redirect", wantBody: der, wantV: fetch.Validators{ETag: etag, LastModified: lastMod}},
		{name: "redirect to ftp", url: "/redirect-ftp", wantKind: crl.KindFetch, wantErrMatch: `redirect to scheme "ftp"`},
		{name: "404", url: "/missing", wantKind: crl.KindFetch, wantErrMatch: "404"},
		{name: "over cap by Content-Length", url: "/big-declared", wantKind: crl.KindTooLarge},
		{name: "over cap chunked", url: "/big-chunked", wantKind: crl.KindTooLarge},
		{name: "304 to unconditional", url: "/bogus304", wantKind: crl.KindFetch},
		{name: "timeout", url: "/slow", timeout: 100 * time.Millisecond, wantKind: crl.KindFetch, wantErrMatch: "deadline"},
		{name: "server down", url: downURL, wantKind: crl.KindFetch, wantErrMatch: "refused"},
		{name: "ldap scheme", url: "ldap:///CN=CA,CN=CDP?certificateRevocationList", wantKind: crl.KindFetch, wantErrMatch: "only http and https"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := tc.url
			if strings.HasPrefix(u, "/") {
				u = srv.URL + u
			}
			ff := *f
			if tc.timeout > 0 {
				ff.Timeout = tc.timeout
			}
			res, err := ff.Fetch(context.Background(), u, tc.prev)
			if tc.wantKind != 0 {
				if kindOf(err) != tc.wantKind || !strings.Contains(err.Error(), tc.wantErrMatch) || !strings.Contains(err.Error(), u) {
					t.Fatalf("err = %v, want kind %v naming the URL and %q", err, tc.wantKind, tc.wantErrMatch)
				}
				return
			}
			if err != nil {
				t.Fatalf("Fetch: %v", err)
			}
			if res.NotModified != tc.notModified || !bytes.Equal(res.Body, tc.wantBody) {
				t.Fatalf("NotModified %v body %d bytes; want %v, %d bytes", res.NotModified, len(res.Body), tc.notModified, len(tc.wantBody))
			}
			if (tc.wantV != (fetch.Validators{}) || tc.url == "/just-modified") && res.Validators != tc.wantV {
				t.Fatalf("Validators = %+v, want %+v", res.Validators, tc.wantV)
			}
		})
	}
}

func TestFetchHeaders(t *testing.T) {
	var ua atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ua.Store(r.Header.Get("User-Agent"))
		_, _ = w.Write([]byte{0x30, 0})
	}))
	t.Cleanup(srv.Close)
	var f fetch.Fetcher
	if _, err := f.Fetch(context.Background(), srv.URL, fetch.Validators{}); err != nil {
		t.Fatal(err)
	}
	if got := ua.Load(); got != "segmesh-crl" {
		t.Fatalf("User-Agent = %v", got)
	}
}

func TestCheckURL(t *testing.T) {
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"http://pki.example.com/CertEnroll/CA.crl", true},
		{"https://pki.example.com/ca.crl", true},
		{"ldap:///CN=CA", false},
		{"file:///etc/ca.crl", false},
		{"http:///nohost", false},
		{"pki.example.com/ca.crl", false},
		{"http://[::1", false},
	} {
		t.Run(tc.url, func(t *testing.T) {
			if err := fetch.CheckURL(tc.url); (err == nil) != tc.ok {
				t.Fatalf("CheckURL = %v, want ok %v", err, tc.ok)
			}
		})
	}
}
