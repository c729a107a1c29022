//go:build lab

package suite

import (
	"math/big"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/segmesh/segmesh/internal/labenv"
	"github.com/segmesh/segmesh/internal/testpoll"
	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/crl/crltest"
)

// Issue 17's stories 1 to 3 against the lab: CRLs signed by the lab's
// device issuing CA, served by the lab's distribution point (labtool serve
// on 127.0.0.4; each test adds its own file and removes it), the lab's
// device certificates (alice good, carol revoked in the test's CRL), and
// segmesh run as in production: one process all-in-one, or a crl process
// and an edge process talking gRPC (split). Run:
// flock /tmp/segmesh-lab.lock go test -tags lab -run TestLabRevocation -p 1 ./internal/suite/

// labPair is the crl and edge roles of one mode.
type labPair struct {
	crl, edge *labProc
	// grpc is the crl process's gRPC address in split mode.
	grpc string
}

// startProcs runs c all-in-one or split.
func startProcs(t *testing.T, mode string, c config.Config) *labPair {
	t.Helper()
	if mode == "all-in-one" {
		p := runProc(t, c, "crl,edge", nil)
		return &labPair{crl: p, edge: p}
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pr := &labPair{grpc: lis.Addr().String()}
	pr.crl = startCRLProc(t, c, lis)
	c.Segmesh.Peers.CRL = pr.grpc
	pr.edge = runProc(t, c, "edge", nil)
	return pr
}

// startCRLProc runs the crl role alone, serving edges on lis.
func startCRLProc(t *testing.T, c config.Config, lis net.Listener) *labProc {
	t.Helper()
	c.Segmesh.GRPC.Listen = lis.Addr().String()
	return runProc(t, c, "crl", lis)
}

// labRevocationConfig is the lab's trust store, the test's distribution
// point only, and a one-second refresh.
func (l *revocationLab) labRevocationConfig(t *testing.T, lab *labenv.Env, cdp *labCDP, mutate func(*config.Config)) config.Config {
	t.Helper()
	return l.config(t, func(c *config.Config) {
		c.ClientCertTrustStorePath = strings.Join(lab.CAPEM, ",")
		c.Gateway.CRLURIs = []string{cdp.url}
		c.Segmesh.CRL.FetchIntervalSeconds = 1
		if mutate != nil {
			mutate(c)
		}
	})
}

// TestLabRevocationLargeCRL is story 1 against the lab: a CRL of 250,001
// serials (about 9 MB, over gRPC's 4 MiB default) signed by the lab CA and
// served by the lab CDP is in force at the edge: carol, listed last, is
// refused and alice served.
func TestLabRevocationLargeCRL(t *testing.T) {
	lab := labenv.Up(t)
	l := newRevocationLab(t)
	ca := labIssuingCA(t, lab)
	cdp := newLabCDP(t, lab, "s4-17-large.crl")
	now := time.Now()
	revoked := make([]crltest.Revoked, 0, 250_001)
	for i := range 250_000 {
		revoked = append(revoked, crltest.Revoked{Serial: new(big.Int).SetBytes(crltest.SerialAt(i)), At: now.Add(-time.Hour)})
	}
	revoked = append(revoked, crltest.Revoked{Serial: labSerial(t, lab, "carol"), At: now.Add(-time.Hour)})
	cdp.serve(t, ca.CRL(t, crltest.CRLOptions{Number: 1, ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(24 * time.Hour), Revoked: revoked}))
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			pr := startProcs(t, mode, l.labRevocationConfig(t, lab, cdp, nil))
			eventually(t, "alice", l.labDevice(t, lab, "alice"), pr.edge.edge, true)
			eventually(t, "carol, revoked 250,001st", l.labDevice(t, lab, "carol"), pr.edge.edge, false)
			edge := pr.edge.status(t).Sections.Edge
			st := edge.Revocation
			if len(st.Issuers) != 1 || st.Issuers[0].Serials != 250_001 {
				t.Fatalf("edge holds %+v, want one issuer with 250,001 serials", st.Issuers)
			}
			engineCarried(t, edge.HTTP1Engine, edge.RelayRequests)
		})
	}
}

// TestLabRevocationNeverOlder is story 2 against the lab: once CRL #2
// (carol revoked) is in force, the CDP going back to CRL #1 (carol not
// listed) does not bring carol back, and in split mode neither does a crl
// role restarted without its state while the CDP is down, nor that role
// then fetching CRL #1.
func TestLabRevocationNeverOlder(t *testing.T) {
	lab := labenv.Up(t)
	l := newRevocationLab(t)
	ca := labIssuingCA(t, lab)
	now := time.Now()
	crl1 := ca.CRL(t, crltest.CRLOptions{Number: 1, ThisUpdate: now.Add(-2 * time.Minute), NextUpdate: now.Add(24 * time.Hour)})
	crl2 := ca.CRL(t, crltest.CRLOptions{Number: 2, ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(24 * time.Hour),
		Revoked: []crltest.Revoked{{Serial: labSerial(t, lab, "carol"), At: now.Add(-time.Minute)}}})
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			cdp := newLabCDP(t, lab, "s4-17-older-"+mode+".crl")
			cdp.serve(t, crl2)
			c := l.labRevocationConfig(t, lab, cdp, nil)
			pr := startProcs(t, mode, c)
			alice, carol := l.labDevice(t, lab, "alice"), l.labDevice(t, lab, "carol")
			eventually(t, "alice", alice, pr.edge.edge, true)
			eventually(t, "carol, CRL #2 in force", carol, pr.edge.edge, false)

			cdp.serve(t, crl1)
			testpoll.Until(t, 60*time.Second, "crl role fetched CRL #1 and refused it", func() bool {
				src := pr.crl.status(t).Sections.CRL.Sources
				return len(src) == 1 && src[0].Failures > 0 && strings.Contains(src[0].LastError, "older")
			})
			if served(carol, pr.edge.edge) {
				t.Fatal("carol served after the CDP went back to CRL #1")
			}
			if mode != "split" {
				return
			}
			// A crl replica without state (emptyDir) restarted while the
			// CDP is down, fail-soft: it starts with nothing.
			pr.crl.stop()
			lab.Fault(t, "cdp", true)
			lis, err := net.Listen("tcp", pr.grpc)
			if err != nil {
				t.Fatal(err)
			}
			fresh := c
			fresh.Segmesh.CRL.StateDir = t.TempDir()
			fresh.Gateway.FailHardOnCRLDownload = false
			replica := startCRLProc(t, fresh, lis)
			testpoll.Until(t, 60*time.Second, "edge stream up to the fresh replica", func() bool {
				return pr.edge.status(t).Sections.Edge.Revocation.StreamBrokenSince.IsZero()
			})
			if served(carol, pr.edge.edge) {
				t.Fatal("carol served after a crl replica without state took over")
			}
			lab.Fault(t, "cdp", false) // the CDP is back, still serving CRL #1
			testpoll.Until(t, 60*time.Second, "the fresh replica has CRL #1", func() bool {
				src := replica.status(t).Sections.CRL.Sources
				return len(src) == 1 && src[0].CRLNumber == "1"
			})
			testpoll.Until(t, 60*time.Second, "edge refused CRL #1", func() bool {
				return pr.edge.status(t).Sections.Edge.Revocation.RollbacksRefused > 0
			})
			if served(carol, pr.edge.edge) {
				t.Fatal("carol served after the fresh replica streamed CRL #1")
			}
			if !served(alice, pr.edge.edge) {
				t.Fatal("alice refused with CRL #2 in force")
			}
		})
	}
}

// TestLabRevocationStaleAtEdge is story 3 against the lab: a CRL whose
// nextUpdate is 20 s ahead, then the CDP down (and in split mode the crl
// role stopped). Past nextUpdate a fail-closed edge refuses alice, is not
// ready with the reason on /readyz, shows the stale CRL on /status.json and
// a negative segmesh_edge_crl_next_update_seconds; a fail-open edge serves
// her and shows the same on /status.json and the metric.
func TestLabRevocationStaleAtEdge(t *testing.T) {
	lab := labenv.Up(t)
	l := newRevocationLab(t)
	ca := labIssuingCA(t, lab)
	for _, mode := range modes {
		for _, failClosed := range []bool{true, false} {
			name := mode + map[bool]string{true: "/fail closed", false: "/fail open"}[failClosed]
			t.Run(name, func(t *testing.T) {
				cdp := newLabCDP(t, lab, "s4-17-stale.crl")
				now := time.Now()
				nextUpdate := now.Add(20 * time.Second).Truncate(time.Second) // UTCTime: whole seconds
				cdp.serve(t, ca.CRL(t, crltest.CRLOptions{Number: 1, ThisUpdate: now.Add(-time.Minute), NextUpdate: nextUpdate,
					Revoked: []crltest.Revoked{{Serial: labSerial(t, lab, "carol"), At: now.Add(-time.Minute)}}}))
				pr := startProcs(t, mode, l.labRevocationConfig(t, lab, cdp, func(c *config.Config) {
					c.Segmesh.CRL.FailClosedOnStale = failClosed
				}))
				alice := l.labDevice(t, lab, "alice")
				eventually(t, "alice, fresh CRL", alice, pr.edge.edge, true)
				eventually(t, "carol", l.labDevice(t, lab, "carol"), pr.edge.edge, false)

				lab.Fault(t, "cdp", true)
				if mode == "split" {
					pr.crl.stop()
				}
				testpoll.Until(t, 60*time.Second, "edge judges the CRL stale", func() bool {
					is := pr.edge.status(t).Sections.Edge.Revocation.Issuers
					return len(is) == 1 && is[0].Stale
				})
				if time.Now().Before(nextUpdate) {
					t.Fatalf("stale at %s, before nextUpdate %s", time.Now(), nextUpdate)
				}
				if failClosed {
					eventually(t, "alice past nextUpdate, fail-closed", alice, pr.edge.edge, false)
				} else if !served(alice, pr.edge.edge) {
					t.Fatal("alice refused past nextUpdate with fail-open")
				}
				left, ok := pr.edge.metric(t, "segmesh_edge_crl_next_update_seconds")
				if !ok || left >= 0 {
					t.Fatalf("segmesh_edge_crl_next_update_seconds = %v (present %v), want negative", left, ok)
				}
				st := pr.edge.status(t).Sections.Edge.Revocation
				if st.FailClosedOnStale != failClosed {
					t.Fatalf("/status.json failClosedOnStale %v", st.FailClosedOnStale)
				}
				code, body := adminGet(t, pr.edge.admin, "/readyz")
				// Split: the stream to the stopped crl role is broken
				// longer than the 1 s interval, whatever the policy.
				wantReady := !failClosed && mode != "split"
				if (code == http.StatusOK) != wantReady {
					t.Fatalf("/readyz %d, want ready %v:\n%s", code, wantReady, body)
				}
				switch {
				case failClosed && mode == "all-in-one":
					if !strings.Contains(body, "past its nextUpdate") || st.Ready {
						t.Fatalf("/readyz does not name the stale CRL:\n%s", body)
					}
					if v, ok := pr.edge.metric(t, "segmesh_edge_revocation_unready", `reason="crl_stale"`); !ok || v != 1 {
						t.Fatalf(`segmesh_edge_revocation_unready{reason="crl_stale"} = %v (present %v), want 1`, v, ok)
					}
				case mode == "split":
					if !strings.Contains(body, "broken since") {
						t.Fatalf("/readyz does not name the broken stream:\n%s", body)
					}
				default: // all-in-one, fail-open: ready, but never silent
					if !strings.Contains(body, "failClosedOnStale is off") {
						t.Fatalf("/readyz does not note the stale CRL accepted under fail-open:\n%s", body)
					}
				}
			})
		}
	}
}
