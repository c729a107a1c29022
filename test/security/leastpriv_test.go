//go:build lab

package security

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/internal/labenv"
	"github.com/segmesh/segmesh/test/reliability/segproc"
)

// splitPair starts the back roles (crl, identity, ticket) with the
// password typed in clear and the key beside config.json, then an
// edge-only process whose config.json is the back's after it encrypted the
// password, in a folder without the key and with no key in its
// environment. It returns the two processes and the edge's folder.
func splitPair(t *testing.T, lab *labenv.Env) (back, edge *segproc.Proc, edgeDir string) {
	t.Helper()
	backDir := t.TempDir()
	cfg := segproc.LabConfig(t, lab)
	segproc.Set(cfg, "127.0.0.1:0", "segmesh", "grpc", "listen")
	noKey := []string{"SEGMESH_CONFIG_KEY=", "SEGMESH_CONFIG_KEY_FILE="}
	back = segproc.StartEnv(t, noKey, segproc.WriteConfig(t, backDir, cfg), "--roles", "crl,identity,ticket")
	if back.GRPC == "" {
		t.Fatalf("the back process reports no gRPC address:\n%s", back.Output.String())
	}
	raw, err := os.ReadFile(filepath.Join(backDir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), lab.SvcPassword(t)) {
		t.Fatal("the back process did not encrypt the password in config.json")
	}
	var edgeCfg map[string]any
	if err := json.Unmarshal(raw, &edgeCfg); err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{"identity", "ticket", "crl"} {
		segproc.Set(edgeCfg, back.GRPC, "segmesh", "peers", r)
	}
	segproc.Set(edgeCfg, "", "segmesh", "grpc", "listen")
	segproc.Set(edgeCfg, t.TempDir(), "segmesh", "crl", "stateDir")
	edgeDir = t.TempDir()
	edge = segproc.StartEnv(t, noKey, segproc.WriteConfig(t, edgeDir, edgeCfg), "--roles", "edge")
	return back, edge, edgeDir
}

// TestLabEdgeOnlyRunsWithoutTheKeyOrOtherSecrets: an edge-only process
// whose config.json holds the service account's password encrypted, with
// the key absent, starts and serves alice end to end through the back
// roles. Before, config.Load decrypted every secret whatever --roles said,
// and the edge refused to start without the key.
func TestLabEdgeOnlyRunsWithoutTheKeyOrOtherSecrets(t *testing.T) {
	lab := labenv.Up(t)
	_, edge, edgeDir := splitPair(t, lab)
	r := segproc.Do(segproc.Client(t, lab, "alice"), http.MethodGet, edge.URL(segproc.EAS("Sync", "alice")), nil)
	e, ok := r.Echo()
	if !ok || segproc.Account(e.RemoteUser) != "alice" {
		t.Fatalf("alice through the edge-only process: %s", r)
	}
	if _, err := os.Stat(filepath.Join(edgeDir, "config.key")); err == nil {
		t.Error("the edge-only process created a secrets key")
	}
}

// TestLabEdgeOnlyProcessHoldsNoPassword searches an edge-only process's
// memory and environment for the service account's password after it has
// served a request, and finds none; the back process (ticket, identity),
// searched the same way, holds it, which shows the search finds it.
func TestLabEdgeOnlyProcessHoldsNoPassword(t *testing.T) {
	lab := labenv.Up(t)
	back, edge, _ := splitPair(t, lab)
	if r := segproc.Do(segproc.Client(t, lab, "alice"), http.MethodGet, edge.URL(segproc.EAS("Sync", "alice")), nil); r.Status != http.StatusOK {
		t.Fatalf("alice through the edge-only process: %s", r)
	}
	pw := []byte(lab.SvcPassword(t))
	if n := countInProcess(t, back.Cmd.Process.Pid, pw); n == 0 {
		t.Fatal("the back process's memory does not hold the password: the search is broken")
	}
	if n := countInProcess(t, edge.Cmd.Process.Pid, pw); n != 0 {
		t.Fatalf("the edge-only process holds the service account's password %d time(s)", n)
	}
}

// countInProcess counts occurrences of needle in pid's environment and in
// every readable mapping of its memory (/proc/PID/maps, /proc/PID/mem; the
// test is the process's parent, so ptrace access is granted).
func countInProcess(t *testing.T, pid int, needle []byte) int {
	t.Helper()
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		t.Fatal(err)
	}
	n := bytes.Count(env, needle)
	maps, err := os.Open(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = maps.Close() }()
	mem, err := os.Open(fmt.Sprintf("/proc/%d/mem", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = mem.Close() }()
	sc := bufio.NewScanner(maps)
	regions := 0
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || f[1][0] != 'r' || (len(f) >= 6 && strings.HasPrefix(f[5], "[v")) {
			continue // unreadable, or [vvar]/[vsyscall]
		}
		lo, hi, ok := strings.Cut(f[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		if end-start > 1<<30 {
			continue // the race detector's shadow reservations, not data
		}
		read, found := scanRegion(mem, int64(start), int64(end), needle)
		if read {
			regions++
		}
		n += found
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if regions == 0 {
		t.Fatalf("no memory of pid %d could be read", pid)
	}
	return n
}

// scanRegion counts needle in [start, end) of mem, reading 8 MiB at a time
// with an overlap so a match across two reads is found once. read is false
// when the kernel would not read the region at all (guard pages).
func scanRegion(mem *os.File, start, end int64, needle []byte) (read bool, n int) {
	const chunk = 8 << 20
	buf := make([]byte, chunk+len(needle))
	for off := start; off < end; off += chunk {
		size := min(int64(len(buf)), end-off)
		m, err := mem.ReadAt(buf[:size], off)
		if m == 0 {
			if err != nil && err != io.EOF {
				return read, n
			}
			continue
		}
		read = true
		// Count matches that start in this chunk only; the overlap is for
		// a match that ends in the next one.
		for i := 0; ; {
			j := bytes.Index(buf[i:m], needle)
			if j < 0 || int64(i+j) >= chunk {
				break
			}
			n++
			i += j + 1
		}
	}
	return read, n
}
