package edge

import (
	"context"
	"math/big"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/crl"
	crlv1 "github.com/segmesh/segmesh/proto/segmesh/crl/v1"
)

// issuerCRL is ca's CRL on the wire with a CRL number, thisUpdate and
// nextUpdate, from source.
func issuerCRL(ca *testCA, source string, number int64, thisUpdate, nextUpdate time.Time, serials ...int64) *crlv1.IssuerCRL {
	k := crl.KeyOf(ca.cert.RawSubject, ca.cert.SubjectKeyId)
	ic := &crlv1.IssuerCRL{Issuer: ca.cert.Subject.String(), IssuerKey: k[:], SourceUrl: source,
		CrlNumber: big.NewInt(number).String(), ThisUpdate: timestamppb.New(thisUpdate), NextUpdate: timestamppb.New(nextUpdate),
		SerialCount: uint32(len(serials))}
	for _, s := range serials {
		ic.RevokedSerials = append(ic.RevokedSerials, big.NewInt(s).Bytes())
	}
	return ic
}

// publish makes crls the fake crl role's next snapshot.
func (f *fakeCRL) publish(crls ...*crlv1.IssuerCRL) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.current = &crlv1.WatchSnapshotsResponse{Version: f.current.GetVersion() + 1, Crls: crls}
	close(f.changed)
	f.changed = make(chan struct{})
}

const labCDP = "http://crl.lab.test/ca.crl"

// TestRevocationNeverOlder is story 2 of issue 17: a crl replica holding an
// older CRL (failover to the replica that has CRL #1), or one that restarted
// with nothing while the CDP is down (an empty snapshot), must not take back
// a revocation the edge holds. Failed on main: the edge put any snapshot in
// force, so the revoked certificate was served again.
func TestRevocationNeverOlder(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name      string
		then      func(h *harness) []*crlv1.IssuerCRL
		rollbacks int64
	}{
		{"older CRL number from another replica", func(h *harness) []*crlv1.IssuerCRL {
			return []*crlv1.IssuerCRL{issuerCRL(h.ca, labCDP, 1, now.Add(-time.Hour), now.Add(23*time.Hour))}
		}, 1},
		{"same number, older thisUpdate", func(h *harness) []*crlv1.IssuerCRL {
			return []*crlv1.IssuerCRL{issuerCRL(h.ca, labCDP, 2, now.Add(-2*time.Hour), now.Add(22*time.Hour))}
		}, 1},
		{"empty snapshot from a replica that knows nothing", func(*harness) []*crlv1.IssuerCRL { return nil }, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(c *config.Config) { c.Gateway.CRLURIs = []string{labCDP} }, options{})
			cert := h.ca.issue(t, certOpts{cn: "lost-phone", serial: 0x77})
			gen := h.edge.revocation.current()
			h.crl.publish(issuerCRL(h.ca, labCDP, 2, now, now.Add(24*time.Hour), 0x77))
			waitFor(t, "CRL #2", func() bool { return h.edge.revocation.current() > gen })
			if !refusedOrForbidden(t, h.client(&cert, false), h.url(syncPath)) {
				t.Fatal("revoked in CRL #2 but served")
			}
			gen = h.edge.revocation.current()
			h.crl.publish(tc.then(h)...)
			waitFor(t, "the next snapshot", func() bool { return h.edge.revocation.current() > gen })
			if !refusedOrForbidden(t, h.client(&cert, false), h.url(syncPath)) {
				t.Fatal("a certificate revoked in CRL #2 was served after the crl role sent less")
			}
			if got := h.edge.revocation.status().RollbacksRefused; got != tc.rollbacks {
				t.Fatalf("rollbacks refused %d, want %d", got, tc.rollbacks)
			}
			good := h.ca.issue(t, certOpts{cn: "alice", serial: 0x78})
			if resp, _ := get(t, h.client(&good, false), h.url(syncPath), nil); resp.StatusCode != 200 {
				t.Fatalf("good certificate: status %d", resp.StatusCode)
			}
		})
	}
}

// TestRevocationStaleJudgedAtEdge is story 3 of issue 17: with
// segmesh.crl.failClosedOnStale the edge refuses an issuer's certificates
// once its CRL passes nextUpdate on the edge's own clock, with the crl role
// gone (it can no longer say "stale"), on new and open connections. Failed
// on main: only the crl role's stale flag counted, so the certificate was
// served indefinitely.
func TestRevocationStaleJudgedAtEdge(t *testing.T) {
	for _, failClosed := range []bool{true, false} {
		t.Run(map[bool]string{true: "fail closed", false: "fail open"}[failClosed], func(t *testing.T) {
			clock := &testClock{t: time.Now()}
			f := newFakeCRL()
			now := clock.Now()
			srv, cc := startGRPC(t, func(s *grpc.Server) { crlv1.RegisterRevocationServiceServer(s, f) })
			h := newHarness(t, func(c *config.Config) { c.Segmesh.CRL.FailClosedOnStale = failClosed },
				options{crl: crlv1.NewRevocationServiceClient(cc), now: clock.Now, crlBackoff: 10 * time.Millisecond})
			gen := h.edge.revocation.current()
			f.publish(issuerCRL(h.ca, labCDP, 1, now, now.Add(time.Hour), 0x99))
			waitFor(t, "CRL", func() bool { return h.edge.revocation.current() > gen })
			cert := h.ca.issue(t, certOpts{cn: "alice", serial: 0x5})
			open := h.client(&cert, false)
			if resp, _ := get(t, open, h.url(syncPath), nil); resp.StatusCode != 200 {
				t.Fatalf("fresh CRL: status %d", resp.StatusCode)
			}
			if n := h.edge.Notes(); len(n) != 0 {
				t.Fatalf("notes with a fresh CRL: %q", n)
			}
			srv.Stop() // the crl role is gone
			waitFor(t, "stream broken", func() bool { return strings.Contains(h.logs.String(), "revocation stream broken") })

			clock.Add(2 * time.Hour)
			h.edge.revocation.expire(now)
			if got := refusedOrForbidden(t, h.client(&cert, false), h.url(syncPath)); got != failClosed {
				t.Fatalf("new connection past nextUpdate: refused %v, want %v", got, failClosed)
			}
			if got := refusedOrForbidden(t, open, h.url(syncPath)); got != failClosed {
				t.Fatalf("open connection past nextUpdate: refused %v, want %v", got, failClosed)
			}
			st := h.edge.revocation.status()
			if len(st.Issuers) != 1 || !st.Issuers[0].Stale {
				t.Fatalf("status does not show the stale CRL: %+v", st.Issuers)
			}
			// Fail-closed refuses the whole issuer: not ready, saying why.
			// Fail-open serves by choice and stays ready.
			if err := h.edge.Ready(context.Background()); (err != nil) != failClosed ||
				failClosed && !strings.Contains(err.Error(), "past its nextUpdate") {
				t.Fatalf("Ready past nextUpdate = %v, want not ready %v", err, failClosed)
			}
			if reason, _ := h.edge.revocation.unready(); failClosed && reason != "crl_stale" {
				t.Fatalf("metric reason %q, want crl_stale", reason)
			}
			// Ready under fail-open, but never silent: /readyz carries a
			// note naming the CDP and the setting (attacker review 2).
			notes := h.edge.Notes()
			switch {
			case failClosed && len(notes) != 0:
				t.Fatalf("notes under fail-closed (the reason is Ready's): %q", notes)
			case !failClosed && (len(notes) != 1 || !strings.Contains(notes[0], labCDP) || !strings.Contains(notes[0], "segmesh.crl.failClosedOnStale is off")):
				t.Fatalf("notes past nextUpdate under fail-open = %q, want one naming %s and the setting", notes, labCDP)
			}
		})
	}
}

// TestRevocationReadiness is the readiness half of issue 17: the edge is
// not ready, with the reason, when its stream has been broken for longer
// than the refresh interval or a configured distribution point has never
// produced a CRL. Failed on main: Ready was nil once any snapshot arrived.
func TestRevocationReadiness(t *testing.T) {
	t.Run("configured CDP never produced a CRL", func(t *testing.T) {
		h := newHarness(t, func(c *config.Config) {
			c.Gateway.CRLURIs = []string{labCDP, "http://crl.lab.test/ca2.crl"}
		}, options{})
		gen := h.edge.revocation.current()
		now := time.Now()
		h.crl.publish(issuerCRL(h.ca, labCDP, 1, now, now.Add(time.Hour)))
		waitFor(t, "CRL", func() bool { return h.edge.revocation.current() > gen })
		err := h.edge.Ready(context.Background())
		if err == nil || !strings.Contains(err.Error(), "ca2.crl") || strings.Contains(err.Error(), labCDP) {
			t.Fatalf("Ready = %v, want the CDP without a CRL named", err)
		}
		if st := h.edge.revocation.status(); st.Ready || !strings.Contains(st.Reason, "ca2.crl") {
			t.Fatalf("status %+v", st)
		}
	})
	t.Run("stream broken longer than the refresh interval", func(t *testing.T) {
		clock := &testClock{t: time.Now()}
		f := newFakeCRL()
		srv, cc := startGRPC(t, func(s *grpc.Server) { crlv1.RegisterRevocationServiceServer(s, f) })
		h := newHarness(t, func(c *config.Config) { c.Segmesh.CRL.FetchIntervalSeconds = 600 },
			options{crl: crlv1.NewRevocationServiceClient(cc), now: clock.Now, crlBackoff: 10 * time.Millisecond})
		if err := h.edge.Ready(context.Background()); err != nil {
			t.Fatalf("Ready with the stream up: %v", err)
		}
		srv.Stop()
		waitFor(t, "stream broken", func() bool { return strings.Contains(h.logs.String(), "revocation stream broken") })
		clock.Add(5 * time.Minute)
		if err := h.edge.Ready(context.Background()); err != nil {
			t.Fatalf("Ready 5 minutes into a 10-minute interval: %v", err)
		}
		clock.Add(6 * time.Minute)
		err := h.edge.Ready(context.Background())
		if err == nil || !strings.Contains(err.Error(), "broken since") {
			t.Fatalf("Ready 11 minutes after the stream broke = %v", err)
		}
	})
}

// TestRevocationExpiryFollowsSnapshots: the timer that re-checks open
// connections when a CRL passes nextUpdate is set again whenever a snapshot
// arrives, so with the crl role gone a fail-closed edge refuses an open
// connection within about a second of nextUpdate. Failed on main (found by
// TestLabRevocationStaleAtEdge/split): the timer was set at start from an
// empty snapshot, a minute ahead, and the open connection was served until
// it fired.
func TestRevocationExpiryFollowsSnapshots(t *testing.T) {
	h := newHarness(t, func(c *config.Config) { c.Segmesh.CRL.FailClosedOnStale = true }, options{})
	gen := h.edge.revocation.current()
	now := time.Now()
	h.crl.publish(issuerCRL(h.ca, labCDP, 1, now.Add(-time.Minute), now.Add(time.Second)))
	waitFor(t, "CRL", func() bool { return h.edge.revocation.current() > gen })
	gen = h.edge.revocation.current()
	cert := h.ca.issue(t, certOpts{cn: "alice", serial: 0x5})
	open := h.client(&cert, false)
	if resp, _ := get(t, open, h.url(syncPath), nil); resp.StatusCode != 200 {
		t.Fatalf("fresh CRL: status %d", resp.StatusCode)
	}
	// Well under the minute the old timer waited; no assertion on how fast.
	deadline := time.Now().Add(20 * time.Second)
	for h.edge.revocation.current() == gen {
		if time.Now().After(deadline) {
			t.Fatal("no new generation 19 s past nextUpdate: open connections are not checked again")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !refusedOrForbidden(t, open, h.url(syncPath)) {
		t.Fatal("open connection served past nextUpdate with fail-closed")
	}
}
