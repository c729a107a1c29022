//go:build lab

package monitoring_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmesh/segmesh/internal/labenv"
	"github.com/segmesh/segmesh/internal/testpki"
	"github.com/segmesh/segmesh/internal/testpoll"
	"github.com/segmesh/segmesh/test/reliability/segproc"
)

// labFor is every alert's `for:` in the lab test: long enough to show the
// pending state, short enough to fire within a bounded run.
const labFor = 2 * time.Second

// faultOnly are the dashboard queries that have no data while segmesh is
// healthy, each with why. The test shows each has data once the faults are
// injected, except those whose fault is not injected here (listed with
// "not injected").
var faultOnly = map[string]string{
	"KDC errors by code/A":                                      "KDC exchanges that failed: none while the KDC answers",
	"annotation segmesh alerts":                                 "firing segmesh alerts: none while healthy",
	"Service-ticket requests and renewals/B":                    "not injected: service-ticket renewals start when a cached ticket nears its end (hours)",
	"TLS handshakes: resumed or full; session ticket key age/B": "not injected: the lab's segmesh runs without segmesh.edge.tlsSessionTicketKeyFile (per-process keys), so it exports no key age",
	"Handler panics: gRPC and edge/A":                           "not injected: a role's gRPC handler panicking is a defect; pkg/role's TestGroupSurvivesAPanickingHandler makes one panic",
	"Handler panics: gRPC and edge/B":                           "not injected: an edge handler panicking is a defect; services/edge's TestDevicePanicLoggedAndCounted makes one panic",
	"Handler panics: gRPC and edge/C":                           "not injected: background work panicking is a defect; services/crl's TestCRLFetchPanicCounted makes one panic",
	"CRL downloads by result/B":                                 "not injected: a CRL the crl role could not write to its state directory; services/crl's TestSaveFailureShown makes the save fail",
	"Trace export failures/A":                                   "not injected: the lab's segmesh exports no traces (no segmesh.telemetry.otlpEndpoint), so the counter is not there; pkg/telemetry's TestTraceExportFailuresShow makes exports fail",
}

// healthyUsers are the devices of the load run: mapped, delegable users,
// and three refused ones (revoked, untrusted CA, no UPN to map).
var healthyUsers = []string{"alice", "bob", "carol", "user0001", "user0002", "user0003", "user0004", "alice-revoked", "alice-ca3", "alice-cloud"}

// TestLabPrometheus runs Debian's Prometheus server against segmesh:
//  1. it scrapes an all-in-one segmesh on the lab every second during a
//     15 s load run; every dashboard query then returns data (but those of
//     faultOnly) and no alert was pending or firing at any time;
//  2. three more segmesh processes, each with one fault of its own (a KDC
//     on a closed port, Exchange on a closed port, a CDP on a closed port
//     plus a CRL of its own CA 2 that passes its nextUpdate), are scraped
//     too, and each fault's alerts fire on its process while the healthy
//     one stays quiet.
//
// The rules are alerts.yml's with `for:` shortened (shortenedRules). The
// shared lab is never faulted: every fault is this test's configuration.
func TestLabPrometheus(t *testing.T) {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatalf("Debian's prometheus server is not installed (apt-get install prometheus; .ci/run does): %v", err)
	}
	lab := labenv.Up(t)
	healthy := segproc.Start(t, segproc.WriteConfig(t, t.TempDir(), segproc.LabConfig(t, lab)))
	prom := startPrometheus(t, bin, labFor, healthy.Admin)

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	seen := drive(ctx, t, lab, healthy, healthyUsers, 300)
	cancel()
	t.Logf("healthy load run: statuses %v", seen)
	if seen[http.StatusOK] < 20 {
		t.Fatalf("healthy load run: only %d requests served (%v):\n%s", seen[http.StatusOK], seen, healthy.Output.String())
	}
	time.Sleep(3 * time.Second) // two more scrapes and rule evaluations

	health := prom.ruleHealth(t)
	if len(health) < 12 {
		t.Errorf("prometheus loaded %d alerting rules, want alerts.yml's 12 or more: %v", len(health), health)
	}
	for name, h := range health {
		if h != "ok" {
			t.Errorf("rule %s: %s", name, h)
		}
	}
	queries := dashboardQueries(t, dashboardFile)
	for where, q := range queries {
		v := prom.query(t, grafanaVars.Replace(q))
		if _, excused := faultOnly[where]; len(v) == 0 && !excused {
			// On a loaded machine Prometheus's scrapes and the rate
			// window lag the load run: wait for a few more scrapes
			// before calling a panel empty.
			testpoll.Within(20*time.Second, func() bool { v = prom.query(t, grafanaVars.Replace(q)); return len(v) > 0 })
		}
		switch _, excused := faultOnly[where]; {
		case len(v) == 0 && !excused:
			t.Errorf("dashboard %s: no data after the load run: %s", where, q)
		case len(v) > 0 && excused:
			t.Errorf("dashboard %s: data while healthy, though listed as fault-only (%s):%s", where, faultOnly[where], describe(v))
		}
	}
	for where := range faultOnly {
		if _, ok := queries[where]; !ok {
			t.Errorf("faultOnly names %q, which is no dashboard query", where)
		}
	}
	if v := prom.query(t, `count_over_time(ALERTS[10m])`); len(v) > 0 {
		t.Errorf("alerts pending or firing on a healthy segmesh under load:%s", describe(v))
	}
	if t.Failed() {
		t.Fatalf("segmesh log:\n%s", tail(healthy.Output.String(), 40))
	}

	faults := startFaulty(t, lab)
	targets := []string{healthy.Admin}
	for _, f := range faults {
		targets = append(targets, f.proc.Admin)
	}
	prom.scrape(t, targets...)
	ctx, cancel = context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, f := range faults {
		if f.load {
			wg.Go(func() { drive(ctx, t, lab, f.proc, []string{"alice", "user0005"}, 1000) })
		}
	}
	waitFiring(ctx, t, prom, faults)
	cancel()
	wg.Wait()

	for where := range faultOnly {
		if strings.HasPrefix(faultOnly[where], "not injected") {
			continue
		}
		if len(prom.query(t, grafanaVars.Replace(queries[where]))) == 0 {
			t.Errorf("dashboard %s: no data with the faults injected: %s", where, queries[where])
		}
	}
	if v := prom.query(t, fmt.Sprintf(`count_over_time(ALERTS{instance=%q}[10m])`, healthy.Admin)); len(v) > 0 {
		t.Errorf("alerts on the healthy segmesh while the others were faulty:%s", describe(v))
	}
}

// faulty is a segmesh process with one fault and the alerts it must fire.
type faulty struct {
	name   string
	proc   *segproc.Proc
	alerts []string
	load   bool // devices send requests to it during the fault run
}

// startFaulty starts the three faulty segmesh processes.
func startFaulty(t *testing.T, lab *labenv.Env) []faulty {
	t.Helper()
	kdc := segproc.LabConfig(t, lab)
	segproc.Set(kdc, []any{map[string]any{"domain": lab.Realm, "domainController": lab.DCHost + ":1088"}}, "kcd", "domains")
	segproc.Set(kdc, 2, "segmesh", "ticket", "kdcTimeoutSeconds")

	exchange := segproc.LabConfig(t, lab)
	segproc.Set(exchange, []any{"http://" + segproc.FreeAddr(t)}, "segmesh", "edge", "exchangeUrls")

	// CA 2's CRL from a distribution point of this test, signed with the
	// lab's CA 2 key, passing its nextUpdate 20 s from now; the issuing
	// CA's URL on a closed port.
	ca2 := testpki.LoadCA(t, lab.CAPEM[2], filepath.Join(lab.Dir, "pki", "ca", "ca2.key"))
	now := time.Now()
	der := ca2.CRL(t, testpki.CRLOptions{Number: 1, ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(20 * time.Second)})
	cdp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/pkix-crl")
		_, _ = w.Write(der)
	}))
	t.Cleanup(cdp.Close)
	crl := segproc.LabConfig(t, lab)
	urls := []string{lab.CRLURLs[0], "http://" + segproc.FreeAddr(t) + "/inter.crl", cdp.URL + "/ca2.crl"}
	segproc.Set(crl, strings.Join(urls, ","), "customGatewaySettings", "remote.crl.distribution.http.uris")
	segproc.Set(crl, "false", "customGatewaySettings", "fail.hard.on.crl.download.failure.during.server.startup")
	segproc.Set(crl, 1, "segmesh", "crl", "fetchIntervalSeconds")

	start := func(cfg map[string]any) *segproc.Proc {
		return segproc.Start(t, segproc.WriteConfig(t, t.TempDir(), cfg))
	}
	return []faulty{
		{name: "KDC on a closed port", proc: start(kdc), load: true,
			alerts: []string{"SegmeshKDCErrors", "SegmeshTGTRenewalFailing"}},
		{name: "Exchange on a closed port", proc: start(exchange), load: true,
			alerts: []string{"SegmeshExchangeErrors"}},
		{name: "CDP on a closed port, a CRL past nextUpdate", proc: start(crl),
			alerts: []string{"SegmeshCRLFetchFailing", "SegmeshRevocationUnready", "SegmeshCRLNearNextUpdate", "SegmeshCRLPastNextUpdate", "SegmeshCRLStale"}},
	}
}

// waitFiring polls Prometheus until every fault's alerts have fired on its
// process (at any time: CRLNearNextUpdate gives way to CRLPastNextUpdate),
// failing the test at ctx's end.
func waitFiring(ctx context.Context, t *testing.T, prom *promServer, faults []faulty) {
	t.Helper()
	for {
		var missing []string
		for _, f := range faults {
			fired := map[string]bool{}
			for _, s := range prom.query(t, fmt.Sprintf(`count_over_time(ALERTS{alertstate="firing",instance=%q}[10m])`, f.proc.Admin)) {
				fired[s.Metric["alertname"]] = true
			}
			for _, a := range f.alerts {
				if !fired[a] {
					missing = append(missing, f.name+": "+a)
				}
			}
		}
		if len(missing) == 0 {
			for _, f := range faults {
				t.Logf("%s: fired %s", f.name, strings.Join(f.alerts, ", "))
			}
			return
		}
		select {
		case <-ctx.Done():
			var logs strings.Builder
			for _, f := range faults {
				fmt.Fprintf(&logs, "\n--- %s:\n%s", f.name, tail(f.proc.Output.String(), 15))
			}
			t.Fatalf("alerts not fired: %s\nalerts now:%s\nlogs:%s", strings.Join(missing, "; "), describe(prom.query(t, "ALERTS")), logs.String())
		case <-time.After(time.Second):
		}
	}
}

// drive sends ActiveSync Syncs to p as each user (a goroutine each, 50 ms
// apart) until ctx ends or each has sent max; it returns how many got each
// HTTP status (0: no answer, as for a refused handshake).
func drive(ctx context.Context, t testing.TB, lab *labenv.Env, p *segproc.Proc, users []string, max int) map[int]int {
	var mu sync.Mutex
	seen := map[int]int{}
	var wg sync.WaitGroup
	for _, u := range users {
		c := segproc.Client(t, lab, u)
		c.Timeout = 10 * time.Second
		wg.Go(func() {
			account, _, _ := strings.Cut(u, "-")
			for range max {
				r := segproc.Do(c, http.MethodPost, p.URL(segproc.EAS("Sync", account)), nil)
				mu.Lock()
				seen[r.Status]++
				mu.Unlock()
				select {
				case <-ctx.Done():
					return
				case <-time.After(50 * time.Millisecond):
				}
			}
		})
	}
	wg.Wait()
	return seen
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
