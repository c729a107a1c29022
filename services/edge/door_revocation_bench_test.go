package edge

import (
	"runtime"
	rtmetrics "runtime/metrics"
	"testing"
	"time"

	"github.com/segmesh/segmesh/pkg/crl"
	"github.com/segmesh/segmesh/pkg/crl/crltest"
	crlv1 "github.com/segmesh/segmesh/proto/segmesh/crl/v1"
)

// heapObjects returns the heap's object bytes (live and not yet swept).
func heapObjects() uint64 {
	s := []rtmetrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	rtmetrics.Read(s)
	return s[0].Value.Uint64()
}

// BenchmarkAssembleSwap1M measures the edge's side of a swap: with a
// 1,000,000-serial index in force, a new 1,000,000-serial snapshot arrives
// as parts of 50,000 serials (about 1 MiB, as the crl role cuts them), each
// made just before it is added as a received message would be. It reports
// the time to assemble and the peak heap above the steady state (the old
// index held) as a multiple of one index's size: issue 17 aims at under 2.
func BenchmarkAssembleSwap1M(b *testing.B) {
	const n, per = 1_000_000, 50_000
	old := crl.NewBuilder(n, 0)
	for i := range n {
		old.Add(crltest.SerialAt(i), time.Time{}, 0)
	}
	held := old.Build(crl.Meta{Issuer: "CN=Bench CA"})
	key := make([]byte, 32)
	for b.Loop() {
		runtime.GC()
		base := heapObjects()
		var peak uint64
		var a assembler
		parts := uint32((n + per - 1) / per)
		var out []*crl.Index
		t0 := time.Now()
		for p := range parts {
			m := &crlv1.WatchSnapshotsResponse{Version: 2, Part: p + 1, Parts: parts}
			c := &crlv1.IssuerCRL{Issuer: "CN=Bench CA", IssuerKey: key, CrlNumber: "2", SerialCount: n}
			for i := int(p) * per; i < min(n, int(p+1)*per); i++ {
				c.RevokedSerials = append(c.RevokedSerials, crltest.SerialAt(n+i))
			}
			m.Crls = []*crlv1.IssuerCRL{c}
			got, done, err := a.add(m)
			if err != nil {
				b.Fatal(err)
			}
			if done {
				out = got
			}
			peak = max(peak, heapObjects())
		}
		took := time.Since(t0)
		if len(out) != 1 || out[0].Len() != n {
			b.Fatalf("assembled %d issuers", len(out))
		}
		b.ReportMetric(float64(took.Milliseconds()), "assemble-ms")
		b.ReportMetric(float64(peak-min(peak, base))/float64(held.Bytes()), "peak/index")
		b.ReportMetric(float64(held.Bytes())/1e6, "index-MB")
	}
	runtime.KeepAlive(held)
}
