//go:build lab

package split

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// hostsMarker ends every /etc/hosts line this test adds (the lab uses
// "# segmesh-lab" for its own).
const hostsMarker = "# segmesh-split-test"

// hostsFile is the resolver's hosts file.
const hostsFile = "/etc/hosts"

// addHosts maps name to every ip in /etc/hosts (one line each, marked) and
// removes the lines in cleanup. The file is rewritten in place: it may be a
// bind mount.
func addHosts(t testing.TB, name string, ips []string) {
	t.Helper()
	removeHosts(t)
	data, err := os.ReadFile(hostsFile)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	b.Write(data)
	if len(data) > 0 && data[len(data)-1] != '\n' {
		b.WriteByte('\n')
	}
	for _, ip := range ips {
		fmt.Fprintf(&b, "%s %s %s\n", ip, name, hostsMarker)
	}
	if err := os.WriteFile(hostsFile, b.Bytes(), 0o644); err != nil {
		t.Fatalf("add %s to %s (the test needs root): %v", name, hostsFile, err)
	}
	t.Cleanup(func() { removeHosts(t) })
}

// removeHosts drops every line ending in hostsMarker.
func removeHosts(t testing.TB) {
	t.Helper()
	data, err := os.ReadFile(hostsFile)
	if err != nil {
		t.Error(err)
		return
	}
	var keep []string
	for _, l := range strings.SplitAfter(string(data), "\n") {
		if !strings.HasSuffix(strings.TrimRight(l, "\n"), hostsMarker) {
			keep = append(keep, l)
		}
	}
	if out := strings.Join(keep, ""); out != string(data) {
		if err := os.WriteFile(hostsFile, []byte(out), 0o644); err != nil {
			t.Error(err)
		}
	}
}

// buildSegmesh builds the segmesh binary into dir, statically (CGO off) as
// the image does.
func buildSegmesh(t testing.TB, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "segmesh")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/segmesh/segmesh/cmd/segmesh")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// setPath sets a dotted key of a decoded JSON document, creating objects on the way.
func setPath(doc map[string]any, path string, v any) {
	keys := strings.Split(path, ".")
	m := doc
	for _, k := range keys[:len(keys)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
	m[keys[len(keys)-1]] = v
}

// writeConfig writes base with the given settings to dir/config.json.
func writeConfig(t testing.TB, base []byte, dir string, set map[string]any) string {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(base, &doc); err != nil {
		t.Fatalf("lab config: %v", err)
	}
	for k, v := range set {
		setPath(doc, k, v)
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "config.json")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// proc is one segmesh process.
type proc struct {
	Name  string
	Admin string // admin listener host:port
	Log   string
	cmd   *exec.Cmd
	done  chan struct{}
	err   error
}

// startProc runs `segmesh run --roles=<roles> --config <config>` with its
// output in dir/segmesh.log, and stops it in cleanup (SIGTERM, SIGKILL
// after 10 s).
func startProc(t testing.TB, bin, name, roles, config, admin string) *proc {
	t.Helper()
	p := &proc{Name: name, Admin: admin, Log: filepath.Join(filepath.Dir(config), "segmesh.log"), done: make(chan struct{})}
	f, err := os.Create(p.Log)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(bin, "run", "--roles="+roles, "--config", config)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		_ = f.Close()
		close(p.done)
	}()
	t.Cleanup(func() { p.stop(t) })
	return p
}

// kill sends SIGKILL to the process by PID and waits for it to exit.
func (p *proc) kill(t testing.TB) {
	t.Helper()
	if err := syscall.Kill(p.cmd.Process.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("kill %s (pid %d): %v", p.Name, p.cmd.Process.Pid, err)
	}
	<-p.done
}

func (p *proc) stop(t testing.TB) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Logf("%s (pid %d) ignored SIGTERM for 10s: killing it", p.Name, p.cmd.Process.Pid)
		_ = syscall.Kill(p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// tail returns the end of the process's log.
func (p *proc) tail() string {
	data, _ := os.ReadFile(p.Log)
	if len(data) > 4000 {
		data = data[len(data)-4000:]
	}
	return string(data)
}

// waitReady polls every process's /readyz until all answer 200 or the deadline passes.
func waitReady(t testing.TB, procs []*proc, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for _, p := range procs {
		for {
			if p.exited() {
				t.Fatalf("%s exited before it was ready: %v\n%s", p.Name, p.err, p.tail())
			}
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.Admin+"/readyz", nil)
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				_ = resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			select {
			case <-ctx.Done():
				t.Fatalf("%s not ready after %v (last: %v)\n%s", p.Name, timeout, err, p.tail())
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

// ipsOf returns the net.IP of each address.
func ipsOf(addrs ...string) []net.IP {
	var out []net.IP
	for _, a := range addrs {
		out = append(out, net.ParseIP(a))
	}
	return out
}
