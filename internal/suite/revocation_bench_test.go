package suite

import (
	"encoding/json"
	"net"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/crl/crltest"
	"github.com/segmesh/segmesh/pkg/role"
)

// countingListener counts the bytes its connections write (the crl role's
// side of the stream: what goes on the wire to the edge).
type countingListener struct {
	net.Listener
	written atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, n: &l.written}, nil
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// statusSink keeps the status sections published.
type statusSink struct {
	mu       sync.Mutex
	sections map[string]func() any
}

func (s *statusSink) Publish(section string, value func() any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sections == nil {
		s.sections = map[string]func() any{}
	}
	s.sections[section] = value
}

// crlHas reports whether the crl role's status section shows CRL number in
// force.
func (s *statusSink) crlHas(tb testing.TB, number string) bool {
	s.mu.Lock()
	f := s.sections[role.CRL]
	s.mu.Unlock()
	if f == nil {
		return false
	}
	b, err := json.Marshal(f())
	if err != nil {
		tb.Fatal(err)
	}
	var st struct {
		Sources []struct {
			CRLNumber string `json:"crlNumber"`
		} `json:"sources"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		tb.Fatal(err)
	}
	return len(st.Sources) > 0 && st.Sources[0].CRLNumber == number
}

// edgeSerials returns the serials in force at the edge for the CRL number
// given, read from its status section; 0 when that CRL is not in force.
func (s *statusSink) edgeSerials(tb testing.TB, number string) int {
	s.mu.Lock()
	f := s.sections[role.Edge]
	s.mu.Unlock()
	if f == nil {
		return 0
	}
	b, err := json.Marshal(f())
	if err != nil {
		tb.Fatal(err)
	}
	var st struct {
		Revocation struct {
			Issuers []struct {
				CRLNumber string `json:"crlNumber"`
				Serials   int    `json:"serials"`
			} `json:"issuers"`
		} `json:"revocation"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		tb.Fatal(err)
	}
	for _, is := range st.Revocation.Issuers {
		if is.CRLNumber == number {
			return is.Serials
		}
	}
	return 0
}

// heapPeak samples the heap's object bytes every 2 ms until stop is closed
// and returns the highest value seen (runtime/metrics: no stop-the-world,
// which runtime.ReadMemStats would add to the figure it measures).
func heapPeak(stop <-chan struct{}) <-chan uint64 {
	out := make(chan uint64, 1)
	go func() {
		var peak uint64
		sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		for {
			metrics.Read(sample)
			peak = max(peak, sample[0].Value.Uint64())
			select {
			case <-stop:
				out <- peak
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	return out
}

// heapNow returns the heap's object bytes after a collection.
func heapNow() uint64 {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(sample)
	return sample[0].Value.Uint64()
}

// BenchmarkRevocationSplit1M is issue 17's end-to-end figure: a CRL of
// 1,000,000 serials, held by a crl role in one group, put in force at an
// edge in another group over split mode's gRPC (loopback, plaintext).
//   - in-force-ms: from the edge's start (the crl role already has the CRL)
//     until its status shows the 1,000,000 serials in force;
//   - in-force-cpu-ms: the process's CPU time (both roles, user+system)
//     meanwhile: what it costs, whatever else the machine runs;
//   - swap-cpu-ms: likewise for the swap below, from the crl role having
//     CRL #2 to the edge having it;
//   - wire-MB: bytes the crl role wrote on the stream for it;
//   - swap-ms and swap-peak-MB: CRL #2 of 1,000,000 serials replacing #1 at
//     the edge (from the crl role's status showing it in force to the
//     edge's), and the peak heap (live and not yet collected) from the CDP
//     serving it until then, above the steady state
//     heap above the steady state meanwhile (both roles share the process:
//     the crl role's new index and parts are counted too);
//   - index-MB: the live heap one 1,000,000-serial CRL adds to the process
//     (crl role and edge each hold one index of it).
func BenchmarkRevocationSplit1M(b *testing.B) {
	l := newRevocationLab(b)
	now := time.Now()
	ca := &crltest.CA{Cert: l.ca.Cert, Key: l.ca.Key}
	crl1 := ca.LargeCRL(b, 1_000_000, 1, now.Add(-time.Minute), now.Add(24*time.Hour))
	crl2 := ca.LargeCRL(b, 1_000_000, 2, now, now.Add(24*time.Hour))
	poll := func(sink *statusSink, number string, deadline time.Duration) time.Duration {
		t0 := time.Now()
		for sink.edgeSerials(b, number) != 1_000_000 {
			if time.Since(t0) > deadline {
				b.Fatalf("CRL #%s not in force at the edge after %v", number, deadline)
			}
			time.Sleep(time.Millisecond)
		}
		return time.Since(t0)
	}
	for b.Loop() {
		l.serve(crl1)
		base := heapNow()
		c := l.config(b, func(c *config.Config) { c.Segmesh.CRL.FetchIntervalSeconds = 1 })
		raw, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		lis := &countingListener{Listener: raw}
		c.Segmesh.GRPC.Listen = raw.Addr().String()
		crlSink := &statusSink{}
		startGroup(b, c, Constructors(), crlSink, lis, role.CRL)
		crlHeld := heapNow()
		c.Segmesh.GRPC.Listen = ""
		c.Segmesh.Peers.CRL = raw.Addr().String()
		sink := &statusSink{}
		t0, cpu0 := time.Now(), cpuTime()
		startGroup(b, c, Constructors(), sink, nil, role.Edge)
		inForce := time.Since(t0) + poll(sink, "1", 30*time.Second)
		inForceCPU := cpuTime() - cpu0
		wire := lis.written.Load()
		steady := heapNow()

		stop := make(chan struct{})
		peak := heapPeak(stop)
		l.serve(crl2) // fetched at the crl role's next 1 s refresh
		for deadline := time.Now().Add(30 * time.Second); !crlSink.crlHas(b, "2"); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				b.Fatal("CRL #2 not in force at the crl role after 30 s")
			}
		}
		cpu1 := cpuTime()
		swap := poll(sink, "2", 30*time.Second)
		swapCPU := cpuTime() - cpu1
		close(stop)
		top := <-peak
		b.ReportMetric(float64(inForce.Milliseconds()), "in-force-ms")
		b.ReportMetric(float64(wire)/1e6, "wire-MB")
		b.ReportMetric(float64(swap.Milliseconds()), "swap-ms")
		b.ReportMetric(float64(inForceCPU.Milliseconds()), "in-force-cpu-ms")
		b.ReportMetric(float64(swapCPU.Milliseconds()), "swap-cpu-ms")
		b.ReportMetric(float64(top-min(top, steady))/1e6, "swap-peak-MB")
		b.ReportMetric(float64(crlHeld-base)/1e6, "index-MB")
	}
}
