package suite

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmesh/segmesh/internal/testpki"
	"github.com/segmesh/segmesh/pkg/config"
)

// TestRunShowsTheRolesWarnings: a warning a role's Validate finds (here the
// edge's trust store holding a private key) is logged by `segmesh run` and
// listed on /status, as config check prints it, instead of being dropped.
func TestRunShowsTheRolesWarnings(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	ca := testpki.NewCA(t, "Warned CA")
	store := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(store, append(ca.PEM(), ca.KeyPEM(t)...), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs syncBuffer
	adminAddr := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, Options{Stderr: &logs, Ready: func(a string) { adminAddr <- a }}, func(c *config.Config) {
			c.Segmesh.Admin.Listen = "127.0.0.1:0"
			c.Segmesh.Edge.Listen = "127.0.0.1:0"
			c.Segmesh.Edge.ExchangeURLs = []string{"https://exchange.invalid"}
			c.ClientCertTrustStorePath = store
		})
	}()
	var addr string
	select {
	case addr = <-adminAddr:
	case err := <-done:
		t.Fatalf("run ended early: %v\n%s", err, logs.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("not started in 30s\n%s", logs.String())
	}
	const warning = "which a trust store neither needs nor uses"
	resp, err := http.Get("http://" + addr + "/status")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if !strings.Contains(string(page), warning) {
		t.Errorf("/status does not list the edge's trust store warning %q", warning)
	}
	// The log is written in batches: poll it to a deadline.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		l := logs.String()
		if strings.Contains(l, "config warning") && strings.Contains(l, warning) {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("the log does not carry the edge's trust store warning:\n%s", l)
			break
		}
	}
	cancel()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("run did not stop after cancel")
	}
}
