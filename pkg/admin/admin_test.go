package admin

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestAdminEndpoints(t *testing.T) {
	ready := map[string]error{"crl": nil, "identity": nil}
	board := &Board{}
	board.Publish("ticket", func() any { return map[string]int{"cache_entries": 7} })
	s := New(Options{Listen: "127.0.0.1:0", Readiness: func() map[string]error { return ready }, Board: board,
		Metrics: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "m 1\n") })})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Stop(context.Background()) }()
	base := "http://" + s.Addr()

	if code, body := get(t, base+"/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("healthz %d %q", code, body)
	}
	if code, body := get(t, base+"/readyz"); code != 200 || !strings.Contains(body, "identity: ready") {
		t.Fatalf("readyz %d %q", code, body)
	}
	ready["identity"] = errors.New("LDAP bind failed")
	if code, body := get(t, base+"/readyz"); code != 503 || !strings.Contains(body, "identity: not ready: LDAP bind failed") {
		t.Fatalf("readyz %d %q", code, body)
	}
	if code, body := get(t, base+"/metrics"); code != 200 || body != "m 1\n" {
		t.Fatalf("metrics %d %q", code, body)
	}
	code, body := get(t, base+"/status.json")
	var st struct {
		Roles    map[string]RoleStatus     `json:"roles"`
		Sections map[string]map[string]int `json:"sections"`
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil || code != 200 {
		t.Fatalf("status.json %d %v %s", code, err, body)
	}
	if st.Roles["identity"].Ready || st.Roles["identity"].Reason != "LDAP bind failed" || st.Sections["ticket"]["cache_entries"] != 7 {
		t.Fatalf("status = %+v", st)
	}
}

func TestAdminListenErrorNamesSetting(t *testing.T) {
	s := New(Options{Listen: "256.0.0.1:1"})
	if err := s.Start(); err == nil || !strings.Contains(err.Error(), "segmesh.admin.listen") {
		t.Fatalf("err = %v", err)
	}
}

func TestPprofOnlyWhenEnabled(t *testing.T) {
	for _, on := range []bool{false, true} {
		s := New(Options{Listen: "127.0.0.1:0", Pprof: on})
		if err := s.Start(); err != nil {
			t.Fatal(err)
		}
		code, body := get(t, "http://"+s.Addr()+"/debug/pprof/goroutine?debug=1")
		_ = s.Stop(context.Background())
		if on && (code != 200 || !strings.Contains(body, "goroutine profile")) {
			t.Fatalf("pprof on: %d %.200s", code, body)
		}
		if !on && code != 404 {
			t.Fatalf("pprof off but served: %d", code)
		}
	}
}

// TestStopDoesNotWaitForSilentConnections: a connection that has sent no
// request (a readiness prober whose CPU is busy: bench/drain.sh's stand-in
// balancer during a reconnect storm) does not hold Stop, which net/http's
// Shutdown would do for up to 5 s and which held segmesh's exit 1.1–2.75 s
// after every role had stopped; a request under way is still answered.
func TestStopDoesNotWaitForSilentConnections(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	slow := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		close(entered)
		<-release
		_, _ = io.WriteString(w, "done")
	})
	s := New(Options{Listen: "127.0.0.1:0", Extra: map[string]http.Handler{"GET /slow": slow}})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	silent, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	// The server accepts in order: once this request is answered, the
	// silent connection is accepted and waits for its first request.
	if code, _ := get(t, "http://"+s.Addr()+"/healthz"); code != 200 {
		t.Fatalf("healthz %d", code)
	}
	type answer struct {
		code int
		body string
	}
	answered := make(chan answer, 1)
	go func() {
		resp, err := http.Get("http://" + s.Addr() + "/slow")
		if err != nil {
			answered <- answer{body: err.Error()}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		answered <- answer{resp.StatusCode, string(b)}
	}()
	<-entered
	// Less than net/http's 5 s for a new connection: on the code before
	// the fix Stop returned this context's error.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- s.Stop(ctx) }()
	_ = silent.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := silent.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("silent connection still open during Stop (read %d, %v)", n, err)
	}
	close(release)
	if err := <-stopped; err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if a := <-answered; a.code != 200 || a.body != "done" {
		t.Fatalf("request under way during Stop: %d %q", a.code, a.body)
	}
}
