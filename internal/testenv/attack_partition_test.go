package testenv

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/segmesh/segmesh/internal/testpoll"
)

// TestAttackPartitionedCRLsEndToEnd: the site's CA partitions its CRL; the
// crl role fetches partitions a and b (b's CRL number always higher) and
// streams both to the edge (split mode: over gRPC, in the snapshot's
// parts). alice's certificate names partition a and is revoked there only:
// she is refused, and stays refused when a newer b (revoking carol) is in
// force; bob of partition a, not listed, is served. Through real segmesh
// processes; keyed by issuer alone, b replaced a and alice was served.
func TestAttackPartitionedCRLsEndToEnd(t *testing.T) {
	for _, mode := range Modes {
		t.Run(string(mode), func(t *testing.T) {
			e := StartWith(t, mode, func(cfg map[string]any) {
				// The CDP's full CRL (/ca.crl) gives way to its two partitions.
				g := cfg["customGatewaySettings"].(map[string]any)
				cdp := strings.TrimSuffix(g["remote.crl.distribution.http.uris"].(string), "/ca.crl")
				g["remote.crl.distribution.http.uris"] = cdp + "/part-a.crl," + cdp + "/part-b.crl"
			})
			alice := e.PartitionDevice("alice", "alice@test.realm", "a")
			bob := e.PartitionDevice("bob", "bob@test.realm", "a")
			carol := e.PartitionDevice("carol", "carol@test.realm", "b")
			code := func(d Device, user string) int {
				return sendEAS(e.Client(d), e.easURL("Sync", user, user+"1"), nil).code
			}
			for _, d := range []Device{alice, bob, carol} {
				if c := code(d, d.Name); c != http.StatusOK {
					t.Fatalf("%s before any revocation: status %d", d.Name, c)
				}
			}
			e.RevokeInPartition(alice, "a")
			if !testpoll.Within(20*time.Second, func() bool { return code(alice, "alice") != http.StatusOK }) {
				t.Fatal("alice, revoked in partition a, still served 20 s later (partition b, newer, replaced a?)")
			}
			e.RevokeInPartition(carol, "b")
			if !testpoll.Within(20*time.Second, func() bool { return code(carol, "carol") != http.StatusOK }) {
				t.Fatal("carol, revoked in partition b, still served 20 s later")
			}
			if c := code(alice, "alice"); c == http.StatusOK {
				t.Fatal("alice served once a newer partition b is in force")
			}
			if c := code(bob, "bob"); c != http.StatusOK {
				t.Fatalf("bob (partition a, not listed): status %d", c)
			}
		})
	}
}
