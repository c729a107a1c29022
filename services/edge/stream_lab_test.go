//go:build lab

package edge_test

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmesh/segmesh/internal/labenv"
)

// patternLen matches the stand-in's ?size= body: byte i is i % 251.
const patternLen = 251

// pattern is an endless reader of the stand-in's download pattern.
type pattern struct{ off int64 }

func (p *pattern) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = byte((p.off + int64(i)) % patternLen)
	}
	p.off += int64(len(b))
	return len(b), nil
}

// patternSHA256 is the SHA-256 of the first n bytes of the pattern.
func patternSHA256(n int64) string {
	h := sha256.New()
	_, _ = io.Copy(h, io.LimitReader(&pattern{}, n))
	return hex.EncodeToString(h.Sum(nil))
}

// segmeshProcess is `segmesh run` as a separate process.
type segmeshProcess struct {
	cmd  *exec.Cmd
	base string
	log  string
}

// freeAddr returns a loopback address with a port free at the moment.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// buildSegmesh builds cmd/segmesh into dir.
func buildSegmesh(t testing.TB, dir string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go"
	}
	bin := filepath.Join(dir, "segmesh")
	out, err := exec.Command(goBin, "build", "-o", bin, "github.com/segmesh/segmesh/cmd/segmesh").CombinedOutput()
	if err != nil {
		t.Fatalf("go build cmd/segmesh: %v\n%s", err, out)
	}
	return bin
}

// startProcess runs the built binary on the lab's config with free ports
// and waits until /readyz is 200; the test's end stops it by PID (SIGTERM,
// then SIGKILL after 15 s).
func startProcess(t *testing.T, lab *labenv.Env, edit func(map[string]any)) *segmeshProcess {
	t.Helper()
	dir := t.TempDir()
	bin := buildSegmesh(t, dir)
	cfg := labConfig(t, lab, "", dir)
	edgeAddr, adminAddr := freeAddr(t), freeAddr(t)
	sm := section(cfg, "segmesh")
	section(sm, "edge")["listen"] = edgeAddr
	section(sm, "admin")["listen"] = adminAddr
	if edit != nil {
		edit(cfg)
	}
	path := writeConfig(t, dir, cfg)
	logPath := filepath.Join(dir, "segmesh.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--config", path)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	_ = logf.Close()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	p := &segmeshProcess{cmd: cmd, base: "https://" + edgeAddr, log: logPath}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			t.Errorf("segmesh (PID %d) did not stop on SIGTERM in 15 s; killing it", cmd.Process.Pid)
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("segmesh log:\n%s", b)
		}
	})
	waitReady(t, adminAddr, p)
	return p
}

// String returns the process's log so far (for failure messages).
func (p *segmeshProcess) String() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// procStatusKB reads a "VmXXX:   N kB" field of /proc/PID/status.
func procStatusKB(t testing.TB, pid int, field string) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("%s: %v", field, err)
			}
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// TestLabStreaming30MB sends a 30 MB upload and a 30 MB download through
// segmesh running as its own process and checks both arrive intact while
// its peak RSS grows by less than 10 MB: bodies stream, nothing buffers
// them. The peak is VmHWM after resetting it (clear_refs 5) once warm.
// Run with each HTTP/1.1 engine (segmesh.edge.http1Engine).
func TestLabStreaming30MB(t *testing.T) {
	for _, engine := range []string{"net/http", "relay"} {
		t.Run(engine, func(t *testing.T) { streaming30MB(t, engine) })
	}
}

func streaming30MB(t *testing.T, engine string) {
	lab := labenv.Up(t)
	p := startProcess(t, lab, func(cfg map[string]any) { section(section(cfg, "segmesh"), "edge")["http1Engine"] = engine })
	pid := p.cmd.Process.Pid
	c := labClient(t, lab, "alice")
	const size = 30 << 20
	url := p.base + "/EWS/Exchange.asmx"

	upload := func(n int64) echo {
		t.Helper()
		req, err := http.NewRequest("POST", url, io.LimitReader(&pattern{}, n))
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = n
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("upload %d bytes: %v", n, err)
		}
		defer resp.Body.Close()
		var e echo
		if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("upload %d bytes: status %d, %v", n, resp.StatusCode, err)
		}
		return e
	}
	download := func(n int64) (int64, string) {
		t.Helper()
		resp, err := c.Get(url + "?size=" + strconv.FormatInt(n, 10))
		if err != nil {
			t.Fatalf("download %d bytes: %v", n, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("download %d bytes: status %d", n, resp.StatusCode)
		}
		h := sha256.New()
		got, err := io.Copy(h, resp.Body)
		if err != nil {
			t.Fatalf("download %d bytes: %v after %d", n, err, got)
		}
		return got, hex.EncodeToString(h.Sum(nil))
	}

	// Warm up: ticket cached, connections, buffers and the GC at rest.
	upload(1 << 20)
	download(1 << 20)
	base := procStatusKB(t, pid, "VmRSS")
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
		t.Fatalf("reset the peak RSS: %v", err)
	}

	start := time.Now()
	e := upload(size)
	upTook := time.Since(start)
	if e.BodyLength != size || e.BodySHA256 != patternSHA256(size) || upnOf(e.RemoteUser) != "alice@lab.test" {
		t.Fatalf("upload arrived as %d bytes sha256 %s for %q", e.BodyLength, e.BodySHA256, e.RemoteUser)
	}
	start = time.Now()
	n, sum := download(size)
	downTook := time.Since(start)
	if n != size || sum != patternSHA256(size) {
		t.Fatalf("download: %d bytes sha256 %s, want %d bytes %s", n, sum, size, patternSHA256(size))
	}
	peak := procStatusKB(t, pid, "VmHWM")
	growth := peak - base
	t.Logf("RSS %d kB before, peak %d kB during the transfers: +%d kB; upload %v, download %v", base, peak, growth, upTook, downTook)
	if growth >= 10<<10 {
		t.Fatalf("segmesh's RSS grew by %d kB (limit 10 MB) moving 2×30 MB", growth)
	}
}
