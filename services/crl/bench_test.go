package crl

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	pkgcrl "github.com/segmesh/segmesh/pkg/crl"
	"github.com/segmesh/segmesh/pkg/crl/crltest"
)

// BenchmarkSnapshotMessage1M measures the wire snapshot of one issuer with
// 1,000,000 revoked serials: building the message (once per version, shared
// by every stream) and marshalling it (once per stream Send), and its size,
// which an edge of the previous version (no accept_parts) gets in one message.
func BenchmarkSnapshotMessage1M(b *testing.B) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	ca := crltest.NewCA(b, "Bench CA", now)
	c, err := pkgcrl.Parse(ca.LargeCRL(b, 1_000_000, 1, now, now.Add(24*time.Hour)))
	if err != nil {
		b.Fatal(err)
	}
	snap := pkgcrl.NewSnapshot(1, c.Index(ca.Cert, "http://bench/ca.crl", now))
	b.Run("build", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if m := snapshotMessage(1, snap); len(m.GetCrls()[0].GetRevokedSerials()) != 1_000_000 {
				b.Fatal("serials missing")
			}
		}
	})
	b.Run("marshal", func(b *testing.B) {
		m := snapshotMessage(1, snap)
		b.ReportAllocs()
		var size int
		for b.Loop() {
			out, err := proto.Marshal(m)
			if err != nil {
				b.Fatal(err)
			}
			size = len(out)
		}
		b.ReportMetric(float64(size)/1e6, "wire-MB")
	})
}
