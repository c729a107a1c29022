package edge

import (
	"crypto/x509"
	"errors"
	"log/slog"
	"math/big"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/segmesh/segmesh/pkg/crl"
	"github.com/segmesh/segmesh/pkg/crl/crltest"
	crlv1 "github.com/segmesh/segmesh/proto/segmesh/crl/v1"
)

// TestAttackPartitionedCRLsAtTheEdge: the crl role streams two partitions
// of one issuer (partition A revoking 42, partition B newer), each its own
// IssuerCRL with the same issuer_key and its partition, in parts. The
// edge's assembler must build two indexes, not one (which also failed the
// serial count), and Merge must keep both, also when B arrives in a later
// snapshot than A: serial 42, whose certificate names A, stays refused. A
// certificate of partition A not listed is refused while only B is held
// (no CRL speaks for it), naming the setting. A crl role that predates
// partitions sends none, and its CRLs are one per issuer as before. The
// partition field is new: this test cannot be written against main, where
// TestAttackPartitionedCRLsThroughTheRole shows the role's side failing.
func TestAttackPartitionedCRLsAtTheEdge(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	ca := crltest.NewCA(t, "Partition CA", now)
	const urlA, urlB = "http://pki.lab.test/CertEnroll/part-a.crl", "http://pki.lab.test/CertEnroll/part-b.crl"
	scopeOf := func(url string) string {
		c, err := crl.Parse(ca.CRL(t, crltest.CRLOptions{ThisUpdate: now, Partition: []string{url}}))
		if err != nil {
			t.Fatal(err)
		}
		return c.Partition()
	}
	key := crl.KeyOf(ca.Cert.RawSubject, ca.Cert.SubjectKeyId)
	chunk := func(source, partition string, number, count int64, serials ...int64) *crlv1.IssuerCRL {
		c := &crlv1.IssuerCRL{Issuer: ca.Cert.Subject.String(), IssuerKey: key[:], SourceUrl: source, Partition: partition,
			CrlNumber: big.NewInt(number).String(), ThisUpdate: timestamppb.New(now.Add(-time.Minute)),
			NextUpdate: timestamppb.New(now.Add(time.Hour)), SerialCount: uint32(count)}
		for _, s := range serials {
			c.PackedSerials = crl.AppendPacked(c.PackedSerials, big.NewInt(s).Bytes())
		}
		return c
	}
	pA, pB := scopeOf(urlA), scopeOf(urlB)
	snapA := []*crlv1.WatchSnapshotsResponse{{Version: 1, Crls: []*crlv1.IssuerCRL{chunk(urlA, pA, 5, 1, 42)}}}
	snapAB := []*crlv1.WatchSnapshotsResponse{
		{Version: 2, Part: 1, Parts: 3, Crls: []*crlv1.IssuerCRL{chunk(urlA, pA, 5, 1, 42), chunk(urlB, pB, 6, 3, 43)}},
		{Version: 2, Part: 2, Parts: 3, Crls: []*crlv1.IssuerCRL{chunk(urlB, pB, 6, 3, 47)}},
		{Version: 2, Part: 3, Parts: 3, Crls: []*crlv1.IssuerCRL{chunk(urlB, pB, 6, 3, 48)}},
	}
	snapB := []*crlv1.WatchSnapshotsResponse{{Version: 3, Crls: []*crlv1.IssuerCRL{chunk(urlB, pB, 6, 1, 43)}}}
	leaf := func(serial int64, cdp string) *x509.Certificate { return ca.Leaf(t, big.NewInt(serial), now, cdp) }

	tests := []struct {
		name      string
		snapshots [][]*crlv1.WatchSnapshotsResponse
		serial    int64
		cdp       string
		want      string // "" served, "revoked", "uncovered"
	}{
		{"A and B in one snapshot, in parts: 42 of A", [][]*crlv1.WatchSnapshotsResponse{snapAB}, 42, urlA, "revoked"},
		{"A and B in one snapshot, in parts: 48 of B", [][]*crlv1.WatchSnapshotsResponse{snapAB}, 48, urlB, "revoked"},
		{"A and B in one snapshot: 44 of B is good", [][]*crlv1.WatchSnapshotsResponse{snapAB}, 44, urlB, ""},
		{"A, then B alone: 42 of A", [][]*crlv1.WatchSnapshotsResponse{snapA, snapB}, 42, urlA, "revoked"},
		{"B alone: 45 of A is not judged by B", [][]*crlv1.WatchSnapshotsResponse{snapB}, 45, urlA, "uncovered"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRevocation(revocationConfig{Enabled: true, URLs: []string{urlA, urlB}}, slog.New(slog.DiscardHandler), time.Now)
			for _, snap := range tt.snapshots {
				var a assembler
				for i, m := range snap {
					out, done, err := a.add(m)
					if err != nil {
						t.Fatalf("part %d: %v", i+1, err)
					}
					if done != (i == len(snap)-1) {
						t.Fatalf("part %d of %d: done %v", i+1, len(snap), done)
					}
					if done {
						r.apply(m.GetVersion(), out)
					}
				}
			}
			_, err := r.check(leaf(tt.serial, tt.cdp))
			var rv *RevokedError
			var ui *UnknownIssuerError
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("serial %d refused: %v", tt.serial, err)
			case tt.want == "revoked" && (!errors.As(err, &rv) || rv.FailedClosed):
				t.Fatalf("serial %d: %v; want revoked", tt.serial, err)
			case tt.want == "uncovered" && (!errors.As(err, &ui) || !ui.Uncovered):
				t.Fatalf("serial %d: %v; want refused as not covered by the partitions held", tt.serial, err)
			}
			if r.rollbacks.Load() != 0 {
				t.Fatalf("%d rollbacks refused; partitions are not rollbacks of one another", r.rollbacks.Load())
			}
		})
	}

	// A crl role without the partition field: one CRL per issuer, the
	// newer wins as before.
	r := newRevocation(revocationConfig{Enabled: true}, slog.New(slog.DiscardHandler), time.Now)
	var a assembler
	out, done, err := a.add(&crlv1.WatchSnapshotsResponse{Version: 9, Crls: []*crlv1.IssuerCRL{chunk(urlA, "", 5, 1, 42)}})
	if err != nil || !done {
		t.Fatalf("old role's snapshot: done %v, %v", done, err)
	}
	r.apply(9, out)
	if _, err := r.check(leaf(42, "")); !errors.As(err, new(*RevokedError)) {
		t.Fatalf("old role's CRL, serial 42: %v; want revoked", err)
	}
	if _, err := r.check(leaf(44, "")); err != nil {
		t.Fatalf("old role's CRL, serial 44: %v; want served", err)
	}
}
