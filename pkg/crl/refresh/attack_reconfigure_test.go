package refresh_test

import (
	"context"
	"testing"
	"time"

	"github.com/segmesh/segmesh/pkg/crl/refresh"
)

// TestAttackReconfigureRetiresACertificateCDP: with
// segmesh.crl.useCertificateCdps on, an administrator removes from
// remote.crl.distribution.http.uris the URL the CA's certificates name
// (the role learns it from them anyway). A reload retired it: its last CRL
// stayed in force but was never fetched again, and since its issuer stayed
// known no certificate taught it again (the edge and the role learn only
// for an unknown issuer). A device revoked after the reload was accepted
// until a restart, silently (failClosedOnStale off keeps the stale CRL).
// With certificate CDPs on, the removed URL is kept as one learnt from
// certificates and stays fetched. Attacker review (review2).
func TestAttackReconfigureRetiresACertificateCDP(t *testing.T) {
	for _, derive := range []bool{true, false} {
		t.Run(map[bool]string{true: "useCertificateCdps", false: "configured only"}[derive], func(t *testing.T) {
			f := newFixture(t)
			f.cdp.serve(f.crl(t, 1, t0.Add(-time.Hour), 5), "")
			r := newRefresher(t, f.config(func(c *refresh.Config) { c.DeriveFromCAs = derive }))
			if err := r.StartupFetch(context.Background()); err != nil {
				t.Fatal(err)
			}
			commit, err := r.Reconfigure(nil, time.Hour) // the certificates name the URL
			if err != nil {
				t.Fatal(err)
			}
			commit()
			if n := r.AddDerived(f.cdp.url()); n != 0 && !derive {
				t.Fatalf("AddDerived of the removed URL = %d", n)
			}

			f.cdp.serve(f.crl(t, 2, t0, 5, 7), "") // the CA revokes serial 7
			r.RefreshNow(context.Background())
			got := revoked(t, r, f.later)
			if derive && !got {
				t.Fatalf("serial 7, revoked at the certificates' distribution point after the reload, is accepted: %+v", r.Status())
			}
			if !revoked(t, r, f.revoked) {
				t.Fatal("serial 5 was un-revoked by the reload")
			}
			if !derive {
				// Without certificate CDPs the removed URL's CRL stays in
				// force unfetched (documented: retired until superseded).
				if st, ok := statusOf(r, f.cdp.url()); !ok || !st.Retired {
					t.Fatalf("configured only: status %+v listed %v, want retired", st, ok)
				}
			}
		})
	}
}
