package main

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"
)

// startLoop serves h with the device loop on a loopback port and returns
// its base URL.
func startLoop(tb testing.TB, h http.Handler) string {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = lis.Close() })
	go func() { _ = serveLoop(lis, h, loopConfig{idle: time.Minute, header: 10 * time.Second}) }()
	return "http://" + lis.Addr().String()
}

// TestDeviceLoopAnswers sends each case twice on one kept-alive connection
// through the loop: the answer (status, header, body) arrives as sent, and
// the second request reuses the connection unless the case closes it.
func TestDeviceLoopAnswers(t *testing.T) {
	for _, tc := range []struct {
		name     string
		method   string
		body     string
		reqClose bool
		handler  http.HandlerFunc
		status   int
		want     string
		reused   bool
		aborts   bool // the second answer is aborted: the device sees an error
	}{
		{name: "content-length", method: "POST", body: "ping", handler: func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			w.Header().Set("Content-Length", "6")
			_, _ = w.Write(append([]byte("re:"), b[:3]...))
		}, status: 200, want: "re:pin", reused: true},
		{name: "chunked, flushed per write", method: "GET", handler: func(w http.ResponseWriter, r *http.Request) {
			for _, s := range []string{"a", "bc", "def"} {
				_, _ = io.WriteString(w, s)
				w.(http.Flusher).Flush()
			}
		}, status: 200, want: "abcdef", reused: true},
		{name: "body left unread", method: "POST", body: strings.Repeat("x", 10000), handler: func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusAccepted)
		}, status: 202, want: "", reused: true},
		{name: "HEAD has no body", method: "HEAD", handler: func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "not sent")
		}, status: 200, want: "", reused: true},
		{name: "the device asks to close", method: "GET", reqClose: true, handler: func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "bye")
		}, status: 200, want: "bye", reused: false},
		{name: "aborted answer closes the connection", method: "GET", handler: func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Get("n") == "1" {
				panic(http.ErrAbortHandler)
			}
			_, _ = io.WriteString(w, "ok")
		}, status: 200, want: "ok", aborts: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := startLoop(t, tc.handler)
			c := &http.Client{Transport: &http.Transport{}}
			t.Cleanup(c.CloseIdleConnections)
			var reused bool
			for n := range 2 {
				var body io.Reader
				if tc.body != "" {
					body = strings.NewReader(tc.body)
				}
				req, err := http.NewRequest(tc.method, base+"/x?n="+string(rune('0'+n)), body)
				if err != nil {
					t.Fatal(err)
				}
				req.Close = tc.reqClose
				req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
					GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused },
				}))
				resp, err := c.Do(req)
				if n == 1 && tc.aborts {
					if err == nil {
						resp.Body.Close()
						t.Fatal("an aborted answer arrived whole")
					}
					return
				}
				if err != nil {
					t.Fatalf("request %d: %v", n, err)
				}
				got, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != tc.status || string(got) != tc.want {
					t.Fatalf("request %d: %d %q %v, want %d %q", n, resp.StatusCode, got, err, tc.status, tc.want)
				}
			}
			if reused != tc.reused {
				t.Fatalf("second request reused the connection: %v, want %v", reused, tc.reused)
			}
		})
	}
}

// TestDeviceLoopReverseProxy runs bareproxy's reverse proxy behind the
// loop, as -device-loop does: the backend's answer and its header arrive.
func TestDeviceLoopReverseProxy(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Seen", r.Method+" "+r.URL.RequestURI())
		_, _ = w.Write(b)
	}))
	t.Cleanup(backend.Close)
	up, _ := url.Parse(backend.URL)
	base := startLoop(t, &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(up) }})
	resp, err := http.Post(base+"/Microsoft-Server-ActiveSync?Cmd=Sync", "application/vnd.ms-sync.wbxml", strings.NewReader("wbxml"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(got) != "wbxml" || resp.Header.Get("X-Seen") != "POST /Microsoft-Server-ActiveSync?Cmd=Sync" {
		t.Fatalf("got %d %q %q", resp.StatusCode, got, resp.Header.Get("X-Seen"))
	}
}
