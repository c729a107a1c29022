package refresh_test

import (
	"encoding/json"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/segmesh/segmesh/pkg/crl"
)

// crashBetweenTheWrites leaves the record whose DER is file as a crash
// between its two writes can: "" leaves it whole; ", description lost"
// removes its description (a first write whose DER was written and its
// description not, as releases before icrl4 wrote them); ", description of
// the CRL before" leaves a description that no longer matches the DER (the
// DER of one write beside the description of the other).
func crashBetweenTheWrites(t *testing.T, file, crash string) {
	t.Helper()
	desc := strings.TrimSuffix(file, ".crl") + ".json"
	switch crash {
	case "":
	case ", description lost":
		if err := os.Remove(desc); err != nil {
			t.Fatal(err)
		}
	case ", description of the CRL before":
		var m map[string]any
		if err := json.Unmarshal(mustRead(t, desc), &m); err != nil {
			t.Fatal(err)
		}
		m["sha256"] = strings.Repeat("0", 64)
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		mustWrite(t, desc, b)
	default:
		t.Fatalf("crashBetweenTheWrites: unknown state %q", crash)
	}
}

// newKeptFixtureY is newKeptFixture with a serving X3, b X5 (serial 5),
// and a third distribution point, c, serving Y7 (partition Y, serial 6);
// y is the verdict on serial 6, a certificate naming partition Y.
func newKeptFixtureY(t *testing.T) (k *keptFixture, c *cdp, y func() crl.Decision) {
	t.Helper()
	k, c = newKeptFixture(t), newCDP(t)
	leafY := k.f.ca.Leaf(t, big.NewInt(6), t0, k.dpY)
	y = func() crl.Decision { return k.r.Snapshot().Decide(leafY, t0.Add(time.Hour), crl.Policy{}) }
	k.f.cdp.serve(k.part(t, k.dpX, 3), "")
	k.b.serve(k.part(t, k.dpX, 5, 5), "")
	c.serve(k.part(t, k.dpY, 7, 6), "")
	return k, c, y
}
