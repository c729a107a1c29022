package edge

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/internal/testmetric"
	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/telemetry"
)

// TestDevicePanicLoggedAndCounted: a device request whose handler panics
// closes that connection only; the edge logs it at error level with the
// stack (net/http's own report goes to the server's ErrorLog, at debug
// level: unseen at the default level), counts it, and serves the next
// request. The proxy's deliberate http.ErrAbortHandler is neither logged
// nor counted.
func TestDevicePanicLoggedAndCounted(t *testing.T) {
	c := config.Default()
	c.Segmesh.Edge.ExchangeURLs = []string{"https://exchange.lab.test"}
	svc, logs, reader := meteredEdge(t, &c, options{})
	srv := svc.newHTTPServer()
	rec, ok := srv.Handler.(*panicRecovery)
	if !ok {
		t.Fatalf("the edge's device handler is %T, not the panic recovery", srv.Handler)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/boom", func(http.ResponseWriter, *http.Request) { panic("index out of range in a device's bytes") })
	mux.HandleFunc("/abort", func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) })
	mux.HandleFunc("/ok", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "served") })
	rec.next = mux
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { _ = srv.Close() })
	base := "http://" + lis.Addr().String()
	for _, path := range []string{"/boom", "/abort"} {
		if resp, err := http.Get(base + path); err == nil {
			_ = resp.Body.Close()
			t.Fatalf("%s: answered %s, want the connection closed", path, resp.Status)
		}
	}
	resp, err := http.Get(base + "/ok")
	if err != nil {
		t.Fatalf("the edge stopped serving after a panic: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if string(body) != "served" {
		t.Fatalf("after the panic: %s %q", resp.Status, body)
	}
	log := logs.String()
	for _, want := range []string{"level=ERROR", "index out of range in a device's bytes", "goroutine ", "path=/boom"} {
		if !strings.Contains(log, want) {
			t.Fatalf("log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, "/abort") {
		t.Fatalf("the proxy's deliberate abort was logged:\n%s", log)
	}
	if n := testmetric.Sum(t, reader, telemetry.MetricEdgeHandlerPanics); n != 1 {
		t.Fatalf("%s = %d, want 1 (the abort is not a panic to count)", telemetry.MetricEdgeHandlerPanics, n)
	}
}

// TestDevicePanicPathCut (ipanic3, attacker review item c): the panic line
// of a device request quotes its path, which the device chooses up to the
// edge's 64 KiB of headers: the line's value was cut to
// telemetry.MaxPanicValue bytes, the path was not. Now every string
// attribute of a panic line is cut the same way (pkg/telemetry
// TestPanicLogCutsWhatAPeerSent).
func TestDevicePanicPathCut(t *testing.T) {
	c := config.Default()
	c.Segmesh.Edge.ExchangeURLs = []string{"https://exchange.lab.test"}
	svc, logs, _ := meteredEdge(t, &c, options{})
	srv := svc.newHTTPServer()
	rec, ok := srv.Handler.(*panicRecovery)
	if !ok {
		t.Fatalf("the edge's device handler is %T, not the panic recovery", srv.Handler)
	}
	rec.next = http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("index out of range in a device's bytes") })
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { _ = srv.Close() })
	path := "/Microsoft-Server-ActiveSync/" + strings.Repeat("a", 60<<10)
	if resp, err := http.Get("http://" + lis.Addr().String() + path); err == nil {
		_ = resp.Body.Close()
		t.Fatalf("answered %s, want the connection closed", resp.Status)
	}
	var line string
	for l := range strings.Lines(logs.String()) {
		if strings.Contains(l, "caused a panic") {
			line = l
		}
	}
	_, p, _ := strings.Cut(line, " path=")
	p, _, _ = strings.Cut(p, " panic=")
	if len(p) > telemetry.MaxPanicValue+40 || !strings.Contains(p, "bytes in all, cut") {
		t.Fatalf("the panic line's path is %d bytes (%.80s...), want at most %d and saying it was cut; line:\n%.300s", len(p), p, telemetry.MaxPanicValue+40, line)
	}
}
