//go:build lab

package split

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/segmesh/segmesh/internal/labenv"
	"github.com/segmesh/segmesh/pkg/rpc"
	ticketv1 "github.com/segmesh/segmesh/proto/segmesh/ticket/v1"
)

// The processes' loopback addresses: one 127.0.10.x each, so every ticket
// replica listens on the same port and one DNS name lists them all.
const (
	edgeIP     = "127.0.10.1"
	identityIP = "127.0.10.5"
	crlIP      = "127.0.10.6"
	grpcPort   = "9443"
	adminPort  = "9090"
	edgePort   = "8443"
	// ticketName resolves (through /etc/hosts) to every ticket replica.
	ticketName = "split-ticket.segmesh.test"
)

var ticketIPs = []string{"127.0.10.2", "127.0.10.3", "127.0.10.4"}

const (
	users     = 200 // lab users driven through the edge
	heldUsers = 150 // users whose tickets the edge holds before the kill
	killAfter = 15  // fresh users that arrive before a ticket replica is killed
)

// cluster is the running split deployment.
type cluster struct {
	edge    *proc
	tickets []*proc
	others  []*proc
	ca      *testCA
	certs   map[string]roleCert
}

func startCluster(t *testing.T, lab *labenv.Env) *cluster {
	t.Helper()
	dir := t.TempDir()
	if keep := os.Getenv("SEGMESH_SPLIT_KEEP"); keep != "" {
		// Keep the configs and logs for a post-mortem.
		dir = keep
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		t.Logf("configs and logs in %s", dir)
	}
	bin := buildSegmesh(t, dir)

	// The Go resolver (which grpc's dns resolver uses) must return every
	// replica for the name.
	addHosts(t, ticketName, ticketIPs)
	// Go caches /etc/hosts for 5 s: poll until this process sees the lines.
	var got []string
	var err error
	for deadline := time.Now().Add(15 * time.Second); ; {
		got, err = net.DefaultResolver.LookupHost(context.Background(), ticketName)
		if err == nil && len(got) == len(ticketIPs) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s resolves to %v (%v); want %v", ticketName, got, err, ticketIPs)
		}
		time.Sleep(200 * time.Millisecond) // poll
	}

	ca := newTestCA(t, dir)
	c := &cluster{ca: ca, certs: map[string]roleCert{
		"edge":     ca.issue(t, dir, "edge", nil, ipsOf(edgeIP)),
		"identity": ca.issue(t, dir, "identity", nil, ipsOf(identityIP)),
		"crl":      ca.issue(t, dir, "crl", nil, ipsOf(crlIP)),
		"ticket":   ca.issue(t, dir, "ticket", []string{ticketName}, ipsOf(ticketIPs...)),
	}}
	base, err := os.ReadFile(lab.SegmeshConfig)
	if err != nil {
		t.Fatal(err)
	}
	edgeID := trustDomain + "edge"
	conf := func(name, roleName, ip string, extra map[string]any) string {
		set := map[string]any{
			"segmesh.admin.listen":        net.JoinHostPort(ip, adminPort),
			"segmesh.grpc.certFile":       c.certs[roleName].Cert,
			"segmesh.grpc.keyFile":        c.certs[roleName].Key,
			"segmesh.grpc.caFile":         ca.File,
			"segmesh.crl.stateDir":        filepath.Join(dir, name, "crl-cache"),
			"segmesh.edge.listen":         net.JoinHostPort(edgeIP, edgePort),
			"segmesh.telemetry.logFormat": "json",
		}
		if roleName != "edge" {
			set["segmesh.grpc.listen"] = net.JoinHostPort(ip, grpcPort)
			set["segmesh.grpc.allowedPeers"] = []string{edgeID}
		}
		for k, v := range extra {
			set[k] = v
		}
		return writeConfig(t, base, filepath.Join(dir, name), set)
	}

	// Start in the roles' order: crl, identity, ticket, edge.
	crl := startProc(t, bin, "crl", "crl", conf("crl", "crl", crlIP, nil), net.JoinHostPort(crlIP, adminPort))
	identity := startProc(t, bin, "identity", "identity", conf("identity", "identity", identityIP, nil), net.JoinHostPort(identityIP, adminPort))
	c.others = []*proc{crl, identity}
	for i, ip := range ticketIPs {
		name := fmt.Sprintf("ticket-%d", i+1)
		c.tickets = append(c.tickets, startProc(t, bin, name, "ticket",
			conf(name, "ticket", ip, map[string]any{"segmesh.telemetry.logLevel": "debug"}), net.JoinHostPort(ip, adminPort)))
	}
	t0 := time.Now()
	waitReady(t, append([]*proc{crl, identity}, c.tickets...), 60*time.Second)
	t.Logf("crl, identity and ticket ready in %v", time.Since(t0).Round(time.Millisecond))
	c.edge = startProc(t, bin, "edge", "edge", conf("edge", "edge", edgeIP, map[string]any{
		"segmesh.peers.identity": net.JoinHostPort(identityIP, grpcPort),
		"segmesh.peers.crl":      net.JoinHostPort(crlIP, grpcPort),
		"segmesh.peers.ticket":   "dns:///" + net.JoinHostPort(ticketName, grpcPort),
	}), net.JoinHostPort(edgeIP, adminPort))
	waitReady(t, []*proc{c.edge}, 60*time.Second)
	return c
}

func (c *cluster) ticketNames() []string {
	var out []string
	for _, p := range c.tickets {
		out = append(out, p.Name)
	}
	return out
}

func TestSplitMode(t *testing.T) {
	lab := labenv.Up(t)
	start := time.Now()
	names := pickUsers(t, lab, users)
	c := startCluster(t, lab)
	t.Logf("cluster ready in %v", time.Since(start).Round(time.Millisecond))

	roots := loadPool(t, lab.ServerCA)
	edgeAddr := net.JoinHostPort(edgeIP, edgePort)
	devices := make([]*device, users)
	for i := range devices {
		devices[i] = newDevice(t, lab.UsersDir, names[i], edgeAddr, "seg.lab.test", roots)
	}
	held, fresh := devices[:heldUsers], devices[heldUsers:]

	// Phase 1: the held users, 10 at a time; each sends two Syncs at once,
	// then a third. A failed Sync is retried after a second, as a device
	// does; every failure is reported.
	t1 := time.Now()
	var failed []outcome
	var mu sync.Mutex
	syncRetry := func(d *device) {
		for try := 0; ; try++ {
			o := syncOnce(d)
			if o.ok() {
				return
			}
			mu.Lock()
			failed = append(failed, o)
			mu.Unlock()
			if try == 4 {
				t.Errorf("phase 1: %s failed 5 times, last: %v", d.User, o)
				return
			}
			time.Sleep(time.Second) // a device's retry pause
		}
	}
	run(held, 10, func(d *device) {
		var wg sync.WaitGroup
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				syncRetry(d)
			}()
		}
		wg.Wait()
		syncRetry(d)
	})
	t.Logf("phase 1: %d users × 3 Syncs in %v; %d failed and were retried", heldUsers, time.Since(t1).Round(time.Millisecond), len(failed))
	for i, o := range failed {
		if i < 10 {
			t.Logf("  phase 1 failure: %v", o)
		}
	}
	if t.Failed() {
		t.Fatalf("edge log:\n%s", c.edge.tail())
	}

	per := make([]map[string]int, len(c.tickets))
	entries := 0
	for i, p := range c.tickets {
		per[i] = kdcExchanges(t, p.Admin)
		entries += ticketCacheEntries(t, p.Admin)
	}
	t.Logf("phase 1 KDC exchanges: %s", describe(per, c.ticketNames()))
	// Every user got a ticket, so every user is in some replica's cache: as
	// many entries and S4U exchanges in all as users means each user's
	// ticket came from exactly one replica. (An S4U2Self whose S4U2Proxy was
	// cut short by a failed request may add one.)
	if n := sumStage(per, "s4u2proxy"); n != heldUsers {
		t.Errorf("S4U2Proxy exchanges over all replicas = %d, want %d (one per user)", n, heldUsers)
	}
	if n := sumStage(per, "s4u2self"); n < heldUsers || n > heldUsers+len(failed) {
		t.Errorf("S4U2Self exchanges over all replicas = %d, want %d (one per user, + at most one per failed request: %d)", n, heldUsers, len(failed))
	}
	if entries != heldUsers {
		t.Errorf("ticket cache entries over all replicas = %d, want %d", entries, heldUsers)
	}
	for i, m := range per {
		if m["s4u2self"] == 0 {
			t.Errorf("%s issued no ticket: the user hash did not spread %d users over %d replicas", c.tickets[i].Name, heldUsers, len(c.tickets))
		}
	}
	// Per user: the replica the ring picks for the user holds its ticket.
	owner, notCached := owners(t, c, held)
	if len(notCached) > 0 {
		t.Errorf("%d users' tickets were not in the cache of the replica their hash picks: %v", len(notCached), notCached)
	}
	byAddr := map[string]int{}
	for _, a := range owner {
		byAddr[a]++
	}
	for i, p := range c.tickets {
		addr := net.JoinHostPort(ticketIPs[i], grpcPort)
		t.Logf("%s (%s): %d users, %d S4U2Proxy exchanges", p.Name, addr, byAddr[addr], per[i]["s4u2proxy"])
		if byAddr[addr] != per[i]["s4u2proxy"] {
			t.Errorf("%s holds the tickets of %d users but made %d S4U2Proxy exchanges", p.Name, byAddr[addr], per[i]["s4u2proxy"])
		}
	}

	// Phase 2: the held users keep syncing while the fresh users arrive one
	// every 100 ms; one ticket replica is killed after the first 15 fresh users.
	victim := c.tickets[1]
	victimAddr := net.JoinHostPort(ticketIPs[1], grpcPort)
	// Where the ring puts the fresh users while every replica runs.
	freshHome := placement(t, c, fresh)
	var beforeKill map[string]int
	ctx, stop := context.WithCancel(context.Background())
	var heldOut []outcome
	var heldWG sync.WaitGroup
	for w := range 6 {
		heldWG.Add(1)
		go func() {
			defer heldWG.Done()
			for i := w; ctx.Err() == nil; i = (i + 6) % len(held) {
				o := syncOnce(held[i])
				mu.Lock()
				heldOut = append(heldOut, o)
				mu.Unlock()
			}
		}()
	}
	type freshResult struct {
		user    string
		fails   []outcome
		okAfter time.Duration // from the first attempt to the first 200
		okAt    time.Time
		ok      bool
	}
	results := make([]freshResult, len(fresh))
	var freshWG sync.WaitGroup
	var killedAt time.Time
	arrivals := time.NewTicker(100 * time.Millisecond) // arrival pace of the fresh users
	defer arrivals.Stop()
	for i, d := range fresh {
		if i == killAfter {
			beforeKill = kdcExchanges(t, victim.Admin)
			victim.kill(t)
			killedAt = time.Now()
			t.Logf("killed %s (pid %d) at %s", victim.Name, victim.cmd.Process.Pid, killedAt.Format("15:04:05.000"))
		}
		freshWG.Add(1)
		go func() {
			defer freshWG.Done()
			r := freshResult{user: d.User}
			first := time.Now()
			deadline := first.Add(20 * time.Second)
			for time.Now().Before(deadline) {
				o := syncOnce(d)
				if o.ok() {
					r.ok, r.okAt, r.okAfter = true, time.Now(), time.Since(first)
					break
				}
				r.fails = append(r.fails, o)
				time.Sleep(200 * time.Millisecond) // a device's retry pause
			}
			// Once it has a ticket, the user keeps working.
			for range 2 {
				if o := syncOnce(d); !o.ok() {
					r.fails = append(r.fails, o)
				}
			}
			results[i] = r
		}()
		<-arrivals.C
	}
	freshWG.Wait()
	// Let every held user sync once more after the last arrival.
	mu.Lock()
	n0 := len(heldOut)
	mu.Unlock()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		mu.Lock()
		n := len(heldOut)
		mu.Unlock()
		if n >= n0+len(held) {
			break
		}
		time.Sleep(50 * time.Millisecond) // poll
	}
	stop()
	heldWG.Wait()

	// A held user's request must not fail. A 502 is Exchange's (the shared
	// lab's Apache restarting under another test), not the ticket path's:
	// it is reported, not counted.
	var heldFail, held502 []outcome
	for _, o := range heldOut {
		switch {
		case o.ok():
		case o.Status == http.StatusBadGateway:
			held502 = append(held502, o)
		default:
			heldFail = append(heldFail, o)
		}
	}
	t.Logf("phase 2: held users sent %d Syncs: %d failed, %d got 502 from an unreachable Exchange", len(heldOut), len(heldFail), len(held502))
	for i, o := range heldFail {
		if i < 10 {
			t.Errorf("held user request failed: %v", o)
		}
	}
	// The edge served every held user's request from its ticket cache: none
	// of them needed the ticket role, dead replica or not.
	heldSet := map[string]bool{}
	for _, d := range held {
		heldSet[d.User+"@lab.test"] = true
	}
	reqs := edgeRequests(t, c.edge, killedAt)
	misses := 0
	for _, r := range reqs {
		if heldSet[r.UPN] && !r.CacheHit && r.Status == http.StatusOK {
			misses++
		}
		if r.Failure != nil && r.Status != http.StatusBadGateway {
			t.Logf("  edge after the kill: %s %s HTTP %d: %s (%s)", r.Time.Format("15:04:05.000"), r.UPN, r.Status, r.Failure.Reason, r.Failure.Cause)
		}
	}
	if misses > 0 {
		t.Errorf("%d requests of held users after the kill missed the edge's ticket cache", misses)
	}

	var failedOnce []string
	var slowest time.Duration
	for _, r := range results {
		if !r.ok {
			t.Errorf("fresh user %s never succeeded within 20s: %v", r.user, r.fails)
			continue
		}
		if len(r.fails) > 0 {
			failedOnce = append(failedOnce, fmt.Sprintf("%s (%d failures: %v; ok after %v)", r.user, len(r.fails), r.fails[0], r.okAfter.Round(time.Millisecond)))
		}
		slowest = max(slowest, r.okAfter)
	}
	t.Logf("phase 2: %d fresh users served; %d saw a failure before success; slowest first success %v", len(results), len(failedOnce), slowest.Round(time.Millisecond))
	for _, f := range failedOnce {
		t.Logf("  %s", f)
	}

	// Every user's tickets still came from one replica: the killed replica's
	// count before the kill plus the survivors' counts.
	final := make([]map[string]int, len(c.tickets))
	for i, p := range c.tickets {
		if p == victim {
			final[i] = beforeKill
			continue
		}
		final[i] = kdcExchanges(t, p.Admin)
	}
	t.Logf("final KDC exchanges (%s as read just before the kill): %s", victim.Name, describe(final, c.ticketNames()))
	// A fetch in flight on the killed replica at the kill may have counted
	// there (before or after the read) and again on a survivor: the sums may
	// differ from the number of users by the fetches in flight, at most the
	// users who arrived before the kill and had no ticket yet.
	inFlight := 0
	for _, r := range results[:killAfter] {
		if !r.okAt.Before(killedAt) {
			inFlight++
		}
	}
	for _, stage := range []string{"s4u2self", "s4u2proxy"} {
		if n := sumStage(final, stage); n < users-inFlight || n > users+inFlight {
			t.Errorf("%s exchanges over all replicas = %d, want %d (one per user) ± %d fetches in flight at the kill", stage, n, users, inFlight)
		}
	}

	// Re-hash: the fresh users who arrived after the kill got their tickets
	// from the replica the ring picked before the kill if it survived, or
	// from a survivor if their replica was the killed one.
	var afterKill []*device
	for i, d := range fresh {
		if i >= killAfter {
			afterKill = append(afterKill, d)
		}
	}
	now, notCached := owners(t, c, afterKill)
	moved, stayed := 0, 0
	for _, d := range afterKill {
		switch home := freshHome[d.User]; {
		case home == victimAddr:
			moved++
			if now[d.User] == victimAddr {
				t.Errorf("%s is still placed on the killed replica", d.User)
			}
		case now[d.User] != home:
			t.Errorf("%s moved from %s to %s although %s still runs", d.User, home, now[d.User], home)
		default:
			stayed++
		}
	}
	if len(notCached) > 0 {
		t.Errorf("fresh users whose ticket is not where the ring now places them: %v", notCached)
	}
	t.Logf("re-hash: of %d users arriving after the kill, %d were placed on %s and moved to a survivor, %d stayed on their replica", len(afterKill), moved, victim.Name, stayed)
	if moved == 0 {
		t.Errorf("no user arriving after the kill was placed on %s: the re-hash was not exercised", victim.Name)
	}

	t.Run("allow-list", func(t *testing.T) { testAllowList(t, c) })
	t.Logf("total %v", time.Since(start).Round(time.Millisecond))
}

// run calls f for every device, n at a time.
func run(devices []*device, n int, f func(*device)) {
	ch := make(chan *device)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := range ch {
				f(d)
			}
		}()
	}
	for _, d := range devices {
		ch <- d
	}
	close(ch)
	wg.Wait()
}

func syncOnce(d *device) outcome {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	st, err := d.sync(ctx)
	return outcome{User: d.User, Status: st, Err: err, At: time.Now()}
}

// testAllowList calls a ticket replica directly: with the identity role's
// certificate (not in allowedPeers) it must get PERMISSION_DENIED, with the
// edge's it must not.
func testAllowList(t *testing.T, c *cluster) {
	target := c.tickets[0]
	addr := net.JoinHostPort(ticketIPs[0], grpcPort)
	tests := []struct {
		name string
		cert string
		want codes.Code
	}{
		{"identity's certificate is refused", "identity", codes.PermissionDenied},
		{"edge's certificate is served", "edge", codes.OK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			creds, err := rpc.ClientCredentials(rpc.TLSFiles{CertFile: c.certs[tt.cert].Cert, KeyFile: c.certs[tt.cert].Key, CAFile: c.ca.File})
			if err != nil {
				t.Fatal(err)
			}
			cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
			if err != nil {
				t.Fatal(err)
			}
			defer cc.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err = ticketv1.NewTicketServiceClient(cc).GetServiceTicket(ctx, &ticketv1.GetServiceTicketRequest{UserPrincipal: "user0001@lab.test"})
			if got := status.Code(err); got != tt.want {
				t.Fatalf("GetServiceTicket on %s with the %s certificate: %v, want %v", target.Name, tt.cert, err, tt.want)
			}
			t.Logf("%s with the %s certificate: %v", target.Name, tt.cert, status.Code(err))
		})
	}
}
