package edge

import (
	"runtime"
	rtmetrics "runtime/metrics"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

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
// unmarshalled from its wire bytes as gRPC would, then added. Serials come
// packed (packed_serials, what the crl role sends an edge of this version)
// or repeated (revoked_serials, the previous form). It reports the time to
// unmarshal and assemble and the peak heap above the steady state (the old
// index and the wire bytes held) as a multiple of one index's size (issue
// 17 aims at under 2), two ways:
//
//   - heap: objects on the heap, live or not yet collected, sampled after
//     each part with the collector running as it would (GOGC=100); the time
//     is this variant's.
//   - live: the same after a forced collection at each part, so only what
//     the edge still references counts (the builder, the part in hand).
func BenchmarkAssembleSwap1M(b *testing.B) {
	const n = 1_000_000
	old := crl.NewBuilder(n, 0)
	for i := range n {
		old.Add(crltest.SerialAt(i), time.Time{}, 0)
	}
	held := old.Build(crl.Meta{Issuer: "CN=Bench CA"})
	for _, form := range []string{"repeated", "packed"} {
		wire := wireParts(b, n, 50_000, form == "packed")
		for _, live := range []bool{false, true} {
			b.Run(form+"/"+map[bool]string{false: "heap", true: "live"}[live], func(b *testing.B) {
				swap(b, held, wire, live)
			})
		}
	}
	runtime.KeepAlive(held)
}

// wireParts returns the marshalled parts of a snapshot of one issuer with n
// serials, per serials to a part.
func wireParts(b *testing.B, n, per int, packed bool) [][]byte {
	key := make([]byte, 32)
	parts := uint32((n + per - 1) / per)
	var wire [][]byte
	for p := range parts {
		c := &crlv1.IssuerCRL{Issuer: "CN=Bench CA", IssuerKey: key, CrlNumber: "2", SerialCount: uint32(n)}
		for i := int(p) * per; i < min(n, int(p+1)*per); i++ {
			if packed {
				c.PackedSerials = crl.AppendPacked(c.PackedSerials, crltest.SerialAt(n+i))
			} else {
				c.RevokedSerials = append(c.RevokedSerials, crltest.SerialAt(n+i))
			}
		}
		w, err := proto.Marshal(&crlv1.WatchSnapshotsResponse{Version: 2, Part: p + 1, Parts: parts, Crls: []*crlv1.IssuerCRL{c}})
		if err != nil {
			b.Fatal(err)
		}
		wire = append(wire, w)
	}
	return wire
}

// swap is one BenchmarkAssembleSwap1M variant.
func swap(b *testing.B, held *crl.Index, wire [][]byte, live bool) {
	for b.Loop() {
		runtime.GC()
		base := heapObjects()
		var peak uint64
		var a assembler
		var out []*crl.Index
		t0 := time.Now()
		for _, w := range wire {
			m := &crlv1.WatchSnapshotsResponse{}
			if err := proto.Unmarshal(w, m); err != nil {
				b.Fatal(err)
			}
			got, done, err := a.add(m)
			if err != nil {
				b.Fatal(err)
			}
			if done {
				out = got
			}
			if live {
				runtime.GC()
			}
			peak = max(peak, heapObjects())
		}
		took := time.Since(t0)
		if len(out) != 1 || out[0].Len() != held.Len() {
			b.Fatalf("assembled %d issuers", len(out))
		}
		if !live {
			b.ReportMetric(float64(took.Milliseconds()), "assemble-ms")
		}
		b.ReportMetric(float64(peak-min(peak, base))/float64(held.Bytes()), "peak/index")
		b.ReportMetric(float64(held.Bytes())/1e6, "index-MB")
		runtime.KeepAlive(out)
	}
}
