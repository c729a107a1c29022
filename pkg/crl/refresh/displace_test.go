package refresh_test

import (
	"context"
	"math/big"
	"testing"
	"time"

	"github.com/segmesh/segmesh/pkg/crl"
	"github.com/segmesh/segmesh/pkg/crl/crltest"
)

// TestAttackDisplacedCRLs: whoever sits on a distribution point's HTTP
// path replays CRLs the CA genuinely signed, of two partitions, in turn at
// one URL (X5, Y, X4, Y, X3, Y, ...; X numbers going down). The CRL of each
// scope in force never goes back (serial 5, revoked only in X5, stays
// revoked), and the refresher holds at most one displaced CRL per issuer
// and partition, not one per replay: a replay loop must not grow memory
// by a CRL each time.
func TestAttackDisplacedCRLs(t *testing.T) {
	f := newFixture(t)
	const dpX, dpY = "http://pki.lab.test/x.crl", "http://pki.lab.test/y.crl"
	part := func(dp string, n int64, serials ...int64) []byte {
		o := crltest.CRLOptions{Number: n, ThisUpdate: t0.Add(time.Duration(n) * time.Minute), NextUpdate: t0.Add(48 * time.Hour), Partition: []string{dp}}
		for _, s := range serials {
			o.Revoked = append(o.Revoked, crltest.Revoked{Serial: big.NewInt(s), At: t0})
		}
		return f.ca.CRL(t, o)
	}
	f.cdp.serve(part(dpX, 50, 5), "")
	r := newRefresher(t, f.config(nil))
	if err := r.StartupFetch(context.Background()); err != nil {
		t.Fatal(err)
	}
	leaf := f.ca.Leaf(t, big.NewInt(5), t0, dpX)
	for i := range 20 {
		f.cdp.serve(part(dpY, 10, 6), "")
		r.RefreshNow(context.Background())
		f.cdp.serve(part(dpX, int64(49-i)), "")
		r.RefreshNow(context.Background())
		if d := r.Snapshot().Decide(leaf, t0.Add(time.Hour), crl.Policy{}); d.Verdict != crl.Revoked {
			t.Fatalf("replay %d: serial 5 %v; want revoked (X number 50 stays in force)", i, d.Verdict)
		}
	}
	displaced := 0
	for _, st := range r.Status() {
		if st.Displaced {
			displaced++
		}
	}
	if displaced > 2 {
		t.Fatalf("%d displaced CRLs held after 20 replays; want at most one per partition", displaced)
	}
}
