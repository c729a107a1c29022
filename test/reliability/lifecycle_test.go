//go:build lab

package reliability

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/segmesh/segmesh/internal/labenv"
	"github.com/segmesh/segmesh/test/reliability/segproc"
)

// metricSum sums the samples of every series of name (Prometheus text)
// whose labels contain label.
func metricSum(t *testing.T, p *segproc.Proc, name, label string) float64 {
	t.Helper()
	resp, err := http.Get(p.AdminURL("/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) || !strings.Contains(line, label) {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}

// TestLabSIGTERMUnderLoad holds four requests in Exchange (?hold=3), two
// Pings and two Syncs, sends SIGTERM while they are in flight, and checks
// that each Ping is answered at once by the edge with an EAS Ping Status 1
// (WBXML) so the device sends it again elsewhere, each Sync completes with
// Exchange's 200, a new connection is no longer served, and the process
// exits 0 well within the drain time (30 s).
func TestLabSIGTERMUnderLoad(t *testing.T) {
	lab := labenv.Up(t)
	p := segproc.Start(t, segproc.WriteConfig(t, t.TempDir(), segproc.LabConfig(t, lab)))
	users := []string{"alice", "bob", "alice", "bob"}
	cmds := []string{"Ping", "Ping", "Sync", "Sync"}
	clients := map[string]*http.Client{}
	for _, u := range []string{"alice", "bob"} {
		clients[u] = segproc.Client(t, lab, u)
		if r := segproc.Do(clients[u], http.MethodGet, p.URL(segproc.EAS("FolderSync", u)), nil); r.Status != 200 {
			t.Fatalf("%s warm-up: %v", u, r)
		}
	}
	const hits = "edge_ticket_cache"
	before := metricSum(t, p, hits, `result="hit"`)
	results := make([]segproc.Result, len(users))
	var wg sync.WaitGroup
	for i, u := range users {
		// A client per request: one connection each, as devices.
		c := segproc.Client(t, lab, u)
		wg.Go(func() {
			results[i] = segproc.Do(c, http.MethodPost, p.URL(segproc.EAS(cmds[i], u)+"&hold=3"), nil)
		})
	}
	deadline := time.Now().Add(10 * time.Second)
	for metricSum(t, p, hits, `result="hit"`) < before+float64(len(users)) {
		if time.Now().After(deadline) {
			t.Fatalf("the held requests did not reach the edge's handler in 10 s (ticket cache hits %v → %v)", before, metricSum(t, p, hits, `result="hit"`))
		}
		time.Sleep(20 * time.Millisecond)
	}
	sent := time.Now()
	p.Signal(t, syscall.SIGTERM)
	p.WaitLog(t, "shutting down", 5*time.Second)
	// A new device connection after SIGTERM is not served.
	fresh := segproc.Client(t, lab, "alice")
	if r := segproc.Do(fresh, http.MethodGet, p.URL(segproc.EAS("Sync", "alice")), nil); r.Status == 200 {
		t.Errorf("a new request after SIGTERM was served: %v", r)
	}
	wg.Wait()
	pingStatus1 := []byte{0x03, 0x01, 0x6a, 0x00, 0x00, 0x0d, 0x45, 0x47, 0x03, '1', 0x00, 0x01, 0x01}
	for i, r := range results {
		if cmds[i] == "Ping" {
			if r.Status != 200 || !bytes.Equal(r.Body, pingStatus1) || r.Header.Get("Content-Type") != "application/vnd.ms-sync.wbxml" {
				t.Errorf("Ping %d (%s) across SIGTERM: want the edge's Status 1 answer, got %v", i, users[i], r)
			}
			continue
		}
		e, ok := r.Echo()
		if !ok || segproc.Account(e.RemoteUser) != strings.ReplaceAll(users[i], "bob", "bob.smith") {
			t.Errorf("in-flight request %d (%s) across SIGTERM: %v", i, users[i], r)
		}
	}
	code, exited := p.Wait(30 * time.Second)
	if !exited {
		t.Fatalf("still running 30 s after SIGTERM:\n%s", tail(p.Output.String(), 20))
	}
	if code != 0 {
		t.Fatalf("exit code %d after SIGTERM:\n%s", code, tail(p.Output.String(), 20))
	}
	t.Logf("exited %s after SIGTERM", time.Since(sent))
	if took := time.Since(sent); took > 20*time.Second {
		t.Errorf("exit took %s after SIGTERM with requests held 3 s", took)
	}
	if !strings.Contains(p.Output.String(), "segmesh stopped") {
		t.Errorf("no clean stop in the log:\n%s", tail(p.Output.String(), 20))
	}
}

// TestLabTicketRestartUnderLoad runs split mode: the ticket role in its own
// process, crl, identity and edge in another. Under a bounded load of cached
// users, the ticket process is killed (SIGKILL) and started again on the
// same address: cached users are served throughout, a new user gets 503
// while it is down and is served once it is back, with no restart of the
// edge.
func TestLabTicketRestartUnderLoad(t *testing.T) {
	lab := labenv.Up(t)
	dir := t.TempDir()
	ticketAddr := segproc.FreeAddr(t)
	tcfg := segproc.LabConfig(t, lab)
	segproc.Set(tcfg, ticketAddr, "segmesh", "grpc", "listen")
	tpath := segproc.WriteConfig(t, t.TempDir(), tcfg)
	ticket := segproc.Start(t, tpath, "--roles=ticket")

	ecfg := segproc.LabConfig(t, lab)
	segproc.Set(ecfg, ticketAddr, "segmesh", "peers", "ticket")
	edge := segproc.Start(t, segproc.WriteConfig(t, dir, ecfg), "--roles=crl,identity,edge")

	cached := []string{"alice", "bob"}
	for _, u := range cached {
		if r := segproc.Do(segproc.Client(t, lab, u), http.MethodGet, edge.URL(segproc.EAS("FolderSync", u)), nil); r.Status != 200 {
			t.Fatalf("%s before the restart: %v\n%s", u, r, tail(edge.Output.String(), 20))
		}
	}

	// Bounded load: 4 workers, cached users only, until stop is closed.
	stop := make(chan struct{})
	var ok, failed atomic.Int64
	var firstFail atomic.Value
	var wg sync.WaitGroup
	for w := range 4 {
		u := cached[w%2]
		c := segproc.Client(t, lab, u)
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				r := segproc.Do(c, http.MethodGet, edge.URL(segproc.EAS("Sync", u)), nil)
				if r.Status == 200 {
					ok.Add(1)
				} else {
					failed.Add(1)
					firstFail.CompareAndSwap(nil, fmt.Sprintf("%s: %v", u, r))
				}
			}
		})
	}
	stopLoad := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopLoad()

	ticket.Kill()
	newUser := segproc.Client(t, lab, "user0051")
	if r := segproc.Do(newUser, http.MethodGet, edge.URL(segproc.EAS("Sync", "user0051")), nil); r.Status != http.StatusServiceUnavailable {
		t.Errorf("new user with the ticket role down: %v, want 503", r)
	}
	okDuringOutage := ok.Load()
	ticket = segproc.Start(t, tpath, "--roles=ticket")
	pollStatus(t, newUser, edge.URL(segproc.EAS("Sync", "user0051")), 200, 20*time.Second)
	stopLoad()
	t.Logf("load: %d served, %d failed (%d served before the ticket role was back)", ok.Load(), failed.Load(), okDuringOutage)
	if failed.Load() > 0 {
		t.Errorf("%d requests of cached users failed across the restart; first: %v", failed.Load(), firstFail.Load())
	}
	if ok.Load() < 10 {
		t.Errorf("only %d requests served under load", ok.Load())
	}
	if !edge.Running() || !ticket.Running() {
		t.Fatal("a segmesh process exited")
	}
}
