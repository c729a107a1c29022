//go:build lab

package monitoring_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/segmesh/segmesh/test/reliability/segproc"
)

// promServer is Debian's Prometheus server, run by a test on a loopback
// port with its configuration, the shortened alert rules and its data in a
// temporary directory, scraping segmesh's admin listeners every second.
type promServer struct {
	cmd  *exec.Cmd
	addr string
	dir  string
	out  *segproc.Buffer
	done chan struct{}
}

// startPrometheus starts the prometheus binary scraping targets (host:port
// of segmesh admin listeners, job "segmesh") and evaluating alerts.yml with
// every `for:` shortened to forDur (shortenedRules). A cleanup stops it by
// its PID.
func startPrometheus(t testing.TB, bin string, forDur time.Duration, targets ...string) *promServer {
	t.Helper()
	src, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	rules, err := shortenedRules(src, forDur)
	if err != nil {
		t.Fatal(err)
	}
	p := &promServer{addr: segproc.FreeAddr(t), dir: t.TempDir(), out: &segproc.Buffer{}, done: make(chan struct{})}
	if err := os.WriteFile(filepath.Join(p.dir, "rules.yml"), rules, 0o644); err != nil {
		t.Fatal(err)
	}
	p.writeConfig(t, targets)
	p.cmd = exec.Command(bin,
		"--config.file="+filepath.Join(p.dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(p.dir, "data"),
		"--web.listen-address="+p.addr,
		"--log.level=warn")
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.stop(t) })
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + p.addr + "/-/ready")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-p.done:
			t.Fatalf("prometheus exited before it was ready:\n%s", p.out.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus not ready after 30 s:\n%s", p.out.String())
		}
	}
	p.waitUp(t, targets...)
	return p
}

func (p *promServer) writeConfig(t testing.TB, targets []string) {
	t.Helper()
	cfg := map[string]any{
		"global":     map[string]any{"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
		"rule_files": []string{"rules.yml"},
		"scrape_configs": []any{map[string]any{
			"job_name":       "segmesh",
			"static_configs": []any{map[string]any{"targets": targets}},
		}},
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p.dir, "prometheus.yml"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// scrape replaces the scrape targets (SIGHUP reloads the configuration)
// and waits until every target is up.
func (p *promServer) scrape(t testing.TB, targets ...string) {
	t.Helper()
	p.writeConfig(t, targets)
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatalf("reload prometheus: %v", err)
	}
	p.waitUp(t, targets...)
}

// waitUp polls until `up` is 1 for every target.
func (p *promServer) waitUp(t testing.TB, targets ...string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		up := map[string]bool{}
		for _, s := range p.query(t, `up{job="segmesh"} == 1`) {
			up[s.Metric["instance"]] = true
		}
		missing := 0
		for _, tg := range targets {
			if !up[tg] {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus: %d of %v not up after 30 s:\n%s", missing, targets, p.out.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// sample is one element of an instant vector from the HTTP API.
type sample struct {
	Metric map[string]string `json:"metric"`
	Value  []any             `json:"value"`
}

// query runs an instant query through the HTTP API (/api/v1/query) and
// returns the vector; a query error fails the test.
func (p *promServer) query(t testing.TB, expr string) []sample {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.addr+"/api/v1/query?query="+url.QueryEscape(expr), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("query %s: %v", expr, err)
	}
	defer func() { _ = resp.Body.Close() }()
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string   `json:"resultType"`
			Result     []sample `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("query %s: HTTP %d: %v", expr, resp.StatusCode, err)
	}
	if r.Status != "success" || r.Data.ResultType != "vector" {
		t.Fatalf("query %s: %s %s (result type %q)", expr, r.Status, r.Error, r.Data.ResultType)
	}
	return r.Data.Result
}

// ruleHealth returns, per alerting rule Prometheus loaded, its health and
// last evaluation error (/api/v1/rules).
func (p *promServer) ruleHealth(t testing.TB) map[string]string {
	t.Helper()
	resp, err := http.Get("http://" + p.addr + "/api/v1/rules?type=alert")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var r struct {
		Data struct {
			Groups []struct {
				Rules []struct {
					Name      string `json:"name"`
					Health    string `json:"health"`
					LastError string `json:"lastError"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("rules: %v", err)
	}
	out := map[string]string{}
	for _, g := range r.Data.Groups {
		for _, rl := range g.Rules {
			out[rl.Name] = strings.TrimSpace(rl.Health + " " + rl.LastError)
		}
	}
	return out
}

// stop ends the server by its PID: SIGTERM, SIGKILL after 15 s.
func (p *promServer) stop(t testing.TB) {
	t.Helper()
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Errorf("prometheus (pid %d) ignored SIGTERM for 15 s; killed", p.cmd.Process.Pid)
	}
}

// describe formats a vector for a failure message.
func describe(v []sample) string {
	var b strings.Builder
	for _, s := range v {
		fmt.Fprintf(&b, "\n  %v %v", s.Metric, s.Value)
	}
	return b.String()
}
