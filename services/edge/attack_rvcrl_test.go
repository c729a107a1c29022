package edge

import (
	"errors"
	"math/big"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/segmesh/segmesh/pkg/crl"
	"github.com/segmesh/segmesh/pkg/crl/crltest"
	crlv1 "github.com/segmesh/segmesh/proto/segmesh/crl/v1"
)

// TestAttackInterleavedPartitionRepeat: a snapshot in which a partition of
// an issuer comes back after another partition (A, B, A), each chunk
// announcing a serial count it keeps. The assembler built two indexes of
// partition A with the same number, and NewSnapshot kept the first: the
// serials of the second chunk (44) were dropped, un-revoked at the edge.
// The crl role never sends this; a snapshot that does breaks the parts
// protocol and must be refused (the last snapshot stays in force), like
// one whose serial count lies. Failed on main: the snapshot was accepted.
func TestAttackInterleavedPartitionRepeat(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	ca := crltest.NewCA(t, "Interleave CA", now)
	key := crl.KeyOf(ca.Cert.RawSubject, ca.Cert.SubjectKeyId)
	chunk := func(partition string, serial int64) *crlv1.IssuerCRL {
		return &crlv1.IssuerCRL{Issuer: ca.Cert.Subject.String(), IssuerKey: key[:], SourceUrl: "http://pki.lab.test/" + partition,
			Partition: partition, CrlNumber: "5", ThisUpdate: timestamppb.New(now.Add(-time.Minute)),
			NextUpdate: timestamppb.New(now.Add(time.Hour)), SerialCount: 1,
			PackedSerials: crl.AppendPacked(nil, big.NewInt(serial).Bytes())}
	}
	const pA, pB = "uri:http://pki.lab.test/a.crl", "uri:http://pki.lab.test/b.crl"
	tests := []struct {
		name string
		msgs []*crlv1.WatchSnapshotsResponse
	}{
		{"A, B, A in one message", []*crlv1.WatchSnapshotsResponse{{Version: 1, Crls: []*crlv1.IssuerCRL{chunk(pA, 42), chunk(pB, 43), chunk(pA, 44)}}}},
		{"A, B, A in parts", []*crlv1.WatchSnapshotsResponse{
			{Version: 1, Part: 1, Parts: 3, Crls: []*crlv1.IssuerCRL{chunk(pA, 42)}},
			{Version: 1, Part: 2, Parts: 3, Crls: []*crlv1.IssuerCRL{chunk(pB, 43)}},
			{Version: 1, Part: 3, Parts: 3, Crls: []*crlv1.IssuerCRL{chunk(pA, 44)}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a assembler
			var err error
			done := false
			for _, m := range tt.msgs {
				if _, done, err = a.add(m); err != nil {
					break
				}
			}
			if !errors.Is(err, errPart) {
				t.Fatalf("snapshot with partition A repeated after B: done %v err %v; want refused as a malformed snapshot", done, err)
			}
		})
	}
}
