package crl_test

import (
	"bytes"
	"crypto/x509"
	"math/big"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/segmesh/segmesh/pkg/crl"
	"github.com/segmesh/segmesh/pkg/crl/crltest"
)

const benchEntries = 1_000_000

// reportCPU reports the CPU time per op since start (see cpuTime).
func reportCPU(b *testing.B, start time.Duration, ops int) {
	b.Helper()
	if used := cpuTime() - start; used > 0 && ops > 0 {
		b.ReportMetric(float64(used.Nanoseconds())/float64(ops), "cpu-ns/op")
	}
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkParseIndex1M measures Parse + Verify + Index of a 1,000,000-entry
// CRL (about 47 MB of DER): time and bytes allocated per op, plus the heap
// the finished index keeps (retained-bytes/entry). Nearly all of B/op is the
// index itself, so the peak above the DER is about the index size.
func BenchmarkParseIndex1M(b *testing.B) {
	ca := crltest.NewCA(b, "Bench CA", t0)
	der := ca.LargeCRL(b, benchEntries, 1, t0, t0.Add(24*time.Hour))
	trusted := []*x509.Certificate{ca.Cert}
	b.SetBytes(int64(len(der)))
	b.ReportAllocs()
	var ix *crl.Index
	cpu, ops := cpuTime(), 0
	for b.Loop() {
		ops++
		c, err := crl.Parse(der)
		if err != nil {
			b.Fatal(err)
		}
		signer, err := c.Verify(trusted)
		if err != nil {
			b.Fatal(err)
		}
		ix = c.Index(signer, "bench", t0)
	}
	b.StopTimer()
	reportCPU(b, cpu, ops)
	if ix.Len() != benchEntries {
		b.Fatalf("Len = %d", ix.Len())
	}
	ix = nil
	before := heapInUse()
	c, err := crl.Parse(der)
	if err != nil {
		b.Fatal(err)
	}
	ix = c.Index(ca.Cert, "bench", t0)
	after := heapInUse()
	b.ReportMetric(float64(after-before)/benchEntries, "retained-bytes/entry")
	b.ReportMetric(float64(ix.Bytes())/benchEntries, "index-bytes/entry")
	runtime.KeepAlive(ix)
	runtime.KeepAlive(der)
}

// BenchmarkParseStdlib1M is the reference: x509.ParseRevocationList alone on
// the same CRL, without any index.
func BenchmarkParseStdlib1M(b *testing.B) {
	ca := crltest.NewCA(b, "Bench CA", t0)
	der := ca.LargeCRL(b, benchEntries, 1, t0, t0.Add(24*time.Hour))
	b.SetBytes(int64(len(der)))
	b.ReportAllocs()
	cpu, ops := cpuTime(), 0
	for b.Loop() {
		ops++
		rl, err := x509.ParseRevocationList(der)
		if err != nil || len(rl.RevokedCertificateEntries) != benchEntries {
			b.Fatalf("ParseRevocationList: %v", err)
		}
	}
	b.StopTimer()
	reportCPU(b, cpu, ops)
	before := heapInUse()
	rl, _ := x509.ParseRevocationList(der)
	after := heapInUse()
	b.ReportMetric(float64(after-before)/benchEntries, "retained-bytes/entry")
	runtime.KeepAlive(rl)
	runtime.KeepAlive(der)
}

// lookupSerials returns serials to look up against a LargeCRL index: half
// listed, half not, spread over the whole index so lookups miss the cache as
// they would in production.
func lookupSerials(n int) []*big.Int {
	out := make([]*big.Int, 0, 8192)
	for i := range 8192 {
		if i%2 == 0 {
			out = append(out, new(big.Int).SetBytes(crltest.SerialAt((i*7919)%n)))
		} else {
			s := crltest.SerialAt(n + i)
			out = append(out, new(big.Int).SetBytes(s))
		}
	}
	return out
}

func benchIndex(b *testing.B) (*crltest.CA, *crl.Index) {
	b.Helper()
	ca := crltest.NewCA(b, "Bench CA", t0)
	der := ca.LargeCRL(b, benchEntries, 1, t0, t0.Add(24*time.Hour))
	c, err := crl.Parse(der)
	if err != nil {
		b.Fatal(err)
	}
	return ca, c.Index(ca.Cert, "bench", t0)
}

// BenchmarkLookup1M measures Index.Lookup on a 1,000,000-entry index for
// serials not listed (the common case), listed, and a half-and-half mix.
// The 8,192 serials are spread over the whole index.
func BenchmarkLookup1M(b *testing.B) {
	_, ix := benchIndex(b)
	serials := lookupSerials(benchEntries)
	var hits, misses []*big.Int
	for i, s := range serials {
		if i%2 == 0 {
			hits = append(hits, s)
		} else {
			misses = append(misses, s)
		}
	}
	for _, tc := range []struct {
		name    string
		serials []*big.Int
		want    func(hits, n int) bool
	}{
		{"miss", misses, func(h, n int) bool { return h == 0 }},
		{"hit", hits, func(h, n int) bool { return h == n }},
		{"mixed", serials, func(h, n int) bool { return n < 3 || h > 0 && h < n }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			mask := len(tc.serials) - 1
			n, i := 0, 0
			cpu := cpuTime()
			for b.Loop() {
				if _, ok := ix.Lookup(tc.serials[i&mask]); ok {
					n++
				}
				i++
			}
			reportCPU(b, cpu, i)
			if !tc.want(n, i) {
				b.Fatalf("%d hits of %d lookups", n, i)
			}
		})
	}
}

// BenchmarkIsRevoked1M measures the edge's whole check for a certificate:
// Set load, issuer key (SHA-256 of its raw issuer and key id) and lookup; and
// the same with the key computed once per connection.
func BenchmarkIsRevoked1M(b *testing.B) {
	ca, ix := benchIndex(b)
	var set crl.Set
	set.Store(crl.NewSnapshot(1, ix))
	certs := []*x509.Certificate{
		ca.Leaf(b, new(big.Int).SetBytes(crltest.SerialAt(12345)), t0),
		ca.Leaf(b, big.NewInt(987654321), t0),
	}
	b.Run("cert", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		cpu := cpuTime()
		for b.Loop() {
			set.IsRevoked(certs[i&1])
			i++
		}
		reportCPU(b, cpu, i)
	})
	b.Run("key-cached", func(b *testing.B) {
		key := crl.CertIssuerKey(certs[0])
		b.ReportAllocs()
		i := 0
		cpu := cpuTime()
		for b.Loop() {
			set.Load().IsRevokedKey(key, certs[i&1])
			i++
		}
		reportCPU(b, cpu, i)
	})
	if rev, _, _ := set.IsRevoked(certs[0]); !rev {
		b.Fatal("listed certificate not revoked")
	}
}

// BenchmarkIndexAlternatives compares the Index layout with the two obvious
// ones, on the same 1,000,000 serials: a Go map keyed by the serial bytes
// (with the entry as value) and a sorted slice searched by bisection.
func BenchmarkIndexAlternatives(b *testing.B) {
	type entry struct {
		at     int64
		reason uint8
	}
	keys := make([][]byte, benchEntries)
	for i := range keys {
		keys[i] = crltest.SerialAt(i)
	}
	probe := make([][]byte, 8192)
	for i := range probe {
		if i%2 == 0 {
			probe[i] = crltest.SerialAt((i * 7919) % benchEntries)
		} else {
			probe[i] = crltest.SerialAt(benchEntries + i)
		}
	}
	b.Run("map", func(b *testing.B) {
		before := heapInUse()
		start := time.Now()
		m := make(map[string]entry, benchEntries)
		for _, k := range keys {
			m[string(k)] = entry{at: 1, reason: 1}
		}
		build := time.Since(start)
		size := heapInUse() - before
		hits, i := 0, 0
		cpu := cpuTime()
		for b.Loop() {
			if _, ok := m[string(probe[i&8191])]; ok {
				hits++
			}
			i++
		}
		reportCPU(b, cpu, i)
		if i > 2 && hits == 0 {
			b.Fatal("no hits")
		}
		b.ReportMetric(float64(size)/benchEntries, "bytes/entry")
		b.ReportMetric(float64(build.Milliseconds()), "build-ms")
	})
	b.Run("sorted", func(b *testing.B) {
		before := heapInUse()
		start := time.Now()
		type row struct {
			serial []byte
			entry
		}
		rows := make([]row, len(keys))
		for i, k := range keys {
			rows[i] = row{serial: bytes.Clone(k), entry: entry{at: 1, reason: 1}}
		}
		slices.SortFunc(rows, func(a, b row) int { return bytes.Compare(a.serial, b.serial) })
		build := time.Since(start)
		size := heapInUse() - before
		hits, i := 0, 0
		cpu := cpuTime()
		for b.Loop() {
			if _, ok := slices.BinarySearchFunc(rows, probe[i&8191], func(r row, k []byte) int { return bytes.Compare(r.serial, k) }); ok {
				hits++
			}
			i++
		}
		reportCPU(b, cpu, i)
		if i > 2 && hits == 0 {
			b.Fatal("no hits")
		}
		b.ReportMetric(float64(size)/benchEntries, "bytes/entry")
		b.ReportMetric(float64(build.Milliseconds()), "build-ms")
	})
	b.Run("index", func(b *testing.B) {
		before := heapInUse()
		start := time.Now()
		bld := crl.NewBuilder(benchEntries, 16*benchEntries)
		for _, k := range keys {
			bld.Add(k, t0, 1)
		}
		ix := bld.Build(crl.Meta{})
		build := time.Since(start)
		size := heapInUse() - before
		hits, i := 0, 0
		cpu := cpuTime()
		for b.Loop() {
			if _, ok := ix.LookupBytes(probe[i&8191]); ok {
				hits++
			}
			i++
		}
		reportCPU(b, cpu, i)
		if i > 2 && hits == 0 {
			b.Fatal("no hits")
		}
		b.ReportMetric(float64(size)/benchEntries, "bytes/entry")
		b.ReportMetric(float64(build.Milliseconds()), "build-ms")
	})
}
