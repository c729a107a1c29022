//go:build lab

package admin_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/segmesh/segmesh/internal/labenv"
	"github.com/segmesh/segmesh/internal/suite"
	"github.com/segmesh/segmesh/pkg/admin"
	"github.com/segmesh/segmesh/pkg/config"
)

// remoteStatus is /status.json as pkg/admin serves it.
type remoteStatus struct {
	Roles    map[string]admin.RoleStatus `json:"roles"`
	Sections map[string]json.RawMessage  `json:"sections"`
}

func getStatus(t *testing.T, addr string) remoteStatus {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/status.json")
	if err != nil {
		t.Fatalf("status.json: %v", err)
	}
	defer resp.Body.Close()
	var s remoteStatus
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatalf("status.json: %v", err)
	}
	return s
}

// TestLabStatusPageInChromium runs every role against the lab, sends device
// requests through the edge, renders the status page from the live Board
// and readiness, and screenshots it with headless Chromium into
// docs/status-page.png.
func TestLabStatusPageInChromium(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium not installed (apt-get install -y chromium)")
	}
	lab := labenv.Up(t)
	dir := t.TempDir()
	raw, err := os.ReadFile(lab.SegmeshConfig)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	seg := doc["segmesh"].(map[string]any)
	seg["edge"].(map[string]any)["listen"] = "127.0.0.1:0"
	seg["admin"] = map[string]any{"listen": "127.0.0.1:0"}
	seg["crl"].(map[string]any)["stateDir"] = filepath.Join(dir, "crl-cache")
	cfgPath := filepath.Join(dir, "config.json")
	out, _ := json.MarshalIndent(doc, "", "  ")
	if err := os.WriteFile(cfgPath, out, 0o600); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- suite.Run(ctx, suite.Options{ConfigPath: cfgPath, Roles: "all", Stderr: io.Discard, DrainTimeout: 5 * time.Second,
			Ready: func(a string) { ready <- a }})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	var adminAddr string
	select {
	case adminAddr = <-ready:
	case err := <-done:
		t.Fatalf("suite stopped: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("suite not ready after 60 s")
	}

	// Device traffic: alice passes, eve (sensitive) and alice-revoked are refused.
	var edgeAddr string
	var edge map[string]any
	_ = json.Unmarshal(getStatus(t, adminAddr).Sections["edge"], &edge)
	edgeAddr, _ = edge["address"].(string)
	if edgeAddr == "" {
		t.Fatalf("edge publishes no address: %v", edge)
	}
	serverCA, _ := os.ReadFile(lab.ServerCA)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(serverCA)
	for _, u := range []string{"alice", "bob", "carol", "alice", "eve", "alice-revoked"} {
		uc := lab.User(u)
		pair, err := tls.LoadX509KeyPair(uc.Chain, uc.Key)
		if err != nil {
			t.Fatal(err)
		}
		c := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "seg.lab.test", Certificates: []tls.Certificate{pair}}}}
		resp, err := c.Do(mustReq(t, "https://"+edgeAddr+"/Microsoft-Server-ActiveSync"))
		if err == nil {
			resp.Body.Close()
			t.Logf("%s: %d", u, resp.StatusCode)
		} else {
			t.Logf("%s: %v", u, err)
		}
	}

	// The page, fed by the running suite's Board and readiness.
	board := &admin.Board{}
	for name := range getStatus(t, adminAddr).Sections {
		board.Publish(name, func() any { return getStatus(t, adminAddr).Sections[name] })
	}
	cfg, report, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	problems := append(report.Problems, config.MigrationNotes(cfg)...)
	page := httptest.NewServer(admin.StatusPage(admin.StatusPageOptions{
		Board: board, Refresh: -1,
		// The suite's registry is inside suite.Run: its /metrics, read over
		// HTTP with Prometheus' own text parser.
		Metrics: prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
			resp, err := http.Get("http://" + adminAddr + "/metrics")
			if err != nil {
				return nil, err
			}
			defer resp.Body.Close()
			p := expfmt.NewTextParser(model.UTF8Validation)
			m, err := p.TextToMetricFamilies(resp.Body)
			out := make([]*dto.MetricFamily, 0, len(m))
			for _, mf := range m {
				out = append(out, mf)
			}
			return out, err
		}),
		ConfigProblems: func() []config.Problem { return problems },
		Readiness: func() map[string]error {
			out := map[string]error{}
			for n, r := range getStatus(t, adminAddr).Roles {
				if !r.Ready {
					out[n] = errors.New(r.Reason)
				} else {
					out[n] = nil
				}
			}
			return out
		},
	}))
	defer page.Close()
	resp, err := http.Get(page.URL + "/status")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	html := string(body)
	for _, want := range []string{"LAB.TEST", "Segmesh Lab Device Issuing CA 1", "http://cdp.lab.test/inter.crl", "ticket: entries", "✓ ready", "% of ", "BADOPTION", "certificate revoked: 1"} {
		if !strings.Contains(html, want) {
			t.Errorf("live page lacks %q", want)
		}
	}

	shot := filepath.Join("..", "..", "docs", "status-page.png")
	cctx, ccancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer ccancel()
	cmd := exec.CommandContext(cctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
		"--user-data-dir="+filepath.Join(dir, "chromium"), "--screenshot="+shot, "--window-size=1280,1000", page.URL+"/status")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, b)
	}
	st, err := os.Stat(shot)
	if err != nil || st.Size() < 20_000 || time.Since(st.ModTime()) > time.Minute {
		t.Fatalf("screenshot %s: %v (size %s)", shot, err, sizeOf(st))
	}
	t.Logf("screenshot %s: %d bytes", shot, st.Size())
}

func mustReq(t *testing.T, url string) *http.Request {
	t.Helper()
	r, err := http.NewRequest(http.MethodOptions, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func sizeOf(st os.FileInfo) string {
	if st == nil {
		return "none"
	}
	return fmt.Sprint(st.Size())
}
