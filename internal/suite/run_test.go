package suite

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/segmesh/segmesh/internal/testlog"
	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/role"
)

// syncBuffer is a bytes.Buffer safe for the logger and the test to share.
type syncBuffer = testlog.Buffer

// TestRunWithDefaultsReportsEveryRoleHealthy runs `segmesh run` on the
// lab-free defaults (no config file) and checks /readyz names every role
// ready, then stops it as SIGTERM would.
func TestRunWithDefaultsReportsEveryRoleHealthy(t *testing.T) {
	t.Chdir(t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs syncBuffer
	adminAddr := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- runOnDefaults(ctx, &logs, func(a string) { adminAddr <- a })
	}()
	var addr string
	select {
	case addr = <-adminAddr:
	case err := <-done:
		t.Fatalf("run ended early: %v\n%s", err, logs.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("not started in 30s\n%s", logs.String())
	}
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("readyz %d: %s", resp.StatusCode, body)
	}
	for n := range Constructors() {
		if !strings.Contains(string(body), n+": ready") {
			t.Fatalf("readyz does not report %s ready:\n%s", n, body)
		}
	}
	resp, err = http.Get("http://" + addr + "/status")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), "<html") || !strings.Contains(string(page), "ticket") {
		t.Fatalf("/status %d:\n%.500s", resp.StatusCode, page)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run returned %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not stop after cancel")
	}
	if !strings.Contains(logs.String(), "segmesh stopped") {
		t.Fatalf("no clean stop in the log:\n%s", logs.String())
	}
}

// runOnDefaults is Run with the defaults but every listener on port 0.
func runOnDefaults(ctx context.Context, logs io.Writer, ready func(string)) error {
	ctors := map[string]role.Constructor{}
	for n, c := range Constructors() {
		ctors[n] = func(d role.Deps) (role.Role, error) {
			cfg := *d.Config
			cfg.Segmesh.Edge.Listen = "127.0.0.1:0"
			d.Config = &cfg
			return c(d)
		}
	}
	return run(ctx, Options{Stderr: logs, Constructors: ctors, Ready: ready}, func(c *config.Config) {
		c.Segmesh.Admin.Listen = "127.0.0.1:0"
		c.Segmesh.Edge.Listen = "127.0.0.1:0"
		// An edge needs an Exchange URL to start; no request is sent here.
		c.Segmesh.Edge.ExchangeURLs = []string{"https://exchange.invalid"}
	})
}
