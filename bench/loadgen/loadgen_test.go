package loadgen

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestBucketRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	vals := []int64{0, 1, 255, 256, 257, 1000, 1 << 20, 123456789, 1<<62 + 12345}
	for i := 0; i < 1000; i++ {
		vals = append(vals, r.Int64N(1<<40))
	}
	for _, v := range vals {
		lo, hi := bucketRange(bucketOf(v))
		if v < lo || v > hi {
			t.Fatalf("value %d in bucket %d [%d, %d]", v, bucketOf(v), lo, hi)
		}
		if lo > 0 && float64(hi-lo) > float64(lo)/100 {
			t.Fatalf("bucket of %d too wide: [%d, %d]", v, lo, hi)
		}
	}
	if got := bucketOf(1<<63 - 1); got >= numBucket {
		t.Fatalf("largest value's bucket %d out of %d", got, numBucket)
	}
}

func TestQuantileMatchesSortedSample(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	tests := []struct {
		name string
		gen  func() time.Duration
	}{
		{"uniform ms", func() time.Duration { return time.Duration(r.Int64N(int64(10 * time.Millisecond))) }},
		{"exponential", func() time.Duration { return time.Duration(r.ExpFloat64() * float64(time.Millisecond)) }},
		{"bimodal", func() time.Duration {
			if r.IntN(100) == 0 {
				return 200*time.Millisecond + time.Duration(r.Int64N(int64(time.Millisecond)))
			}
			return 500*time.Microsecond + time.Duration(r.Int64N(int64(time.Microsecond*50)))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHistogram()
			var sample []time.Duration
			for i := 0; i < 20000; i++ {
				d := tt.gen()
				h.Record(d)
				sample = append(sample, d)
			}
			slices.Sort(sample)
			for _, q := range []float64{0.5, 0.99, 0.999, 1} {
				idx := int(float64(len(sample))*q+0.999999) - 1
				want := sample[idx]
				got := h.Quantile(q)
				if diff := float64(got-want) / float64(want); diff > 0.01 || diff < -0.01 {
					t.Errorf("q%.3f = %v, sorted sample says %v", q, got, want)
				}
			}
			if h.Max() != sample[len(sample)-1] {
				t.Errorf("max %v, want %v", h.Max(), sample[len(sample)-1])
			}
		})
	}
}

func TestMergeEqualsOneHistogram(t *testing.T) {
	a, b, all := NewHistogram(), NewHistogram(), NewHistogram()
	for i := 1; i <= 3000; i++ {
		d := time.Duration(i*i) * time.Microsecond
		all.Record(d)
		if i%2 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	m := NewHistogram()
	m.Merge(a.Sparse(), a.Sum(), a.Max())
	m.Merge(b.Sparse(), b.Sum(), b.Max())
	for _, q := range []float64{0.5, 0.99, 0.999} {
		if m.Quantile(q) != all.Quantile(q) {
			t.Errorf("merged q%v = %v, want %v", q, m.Quantile(q), all.Quantile(q))
		}
	}
	if m.Count() != all.Count() || m.Mean() != all.Mean() || m.Max() != all.Max() {
		t.Errorf("merged count/mean/max %d/%v/%v, want %d/%v/%v", m.Count(), m.Mean(), m.Max(), all.Count(), all.Mean(), all.Max())
	}
}

func TestEmptyHistogram(t *testing.T) {
	h := NewHistogram()
	if h.Quantile(0.99) != 0 || h.Mean() != 0 || h.Count() != 0 {
		t.Fatalf("empty histogram: q99 %v mean %v count %d", h.Quantile(0.99), h.Mean(), h.Count())
	}
}

func fakeResolver(m map[string][]string) Resolver {
	return func(_ context.Context, host string) ([]net.IPAddr, error) {
		ips, ok := m[host]
		if !ok {
			return nil, errors.New("no such host")
		}
		var out []net.IPAddr
		for _, s := range ips {
			out = append(out, net.IPAddr{IP: net.ParseIP(s)})
		}
		return out, nil
	}
}

func TestCheckLoopbackURL(t *testing.T) {
	res := fakeResolver(map[string][]string{
		"seg.lab.test": {"127.0.0.1"},
		"localhost":    {"127.0.0.1", "::1"},
		"mixed.test":   {"127.0.0.1", "192.0.2.7"},
		"far.test":     {"198.51.100.1"},
	})
	tests := []struct {
		url         string
		ok          bool
		notLoopback bool
	}{
		{"https://127.0.0.1:8443", true, false},
		{"https://127.0.0.21:8443/x", true, false},
		{"https://[::1]:8443", true, false},
		{"https://seg.lab.test:8443", true, false},
		{"https://localhost", true, false},
		{"https://10.0.0.1:8443", false, true},
		{"https://[2001:db8::1]:443", false, true},
		{"https://mixed.test", false, true},
		{"https://far.test", false, true},
		{"https://unknown.test", false, false},
		{"ftp://127.0.0.1", false, false},
		{"https://", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			err := CheckLoopbackURL(context.Background(), tt.url, res)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if got := errors.Is(err, ErrNotLoopback); got != tt.notLoopback {
				t.Fatalf("errors.Is(ErrNotLoopback) = %v, want %v (err %v)", got, tt.notLoopback, err)
			}
		})
	}
}

func TestParseSources(t *testing.T) {
	if ips, err := ParseSources([]string{"127.0.0.10", "::1"}); err != nil || len(ips) != 2 {
		t.Fatalf("loopback sources: %v %v", ips, err)
	}
	if _, err := ParseSources([]string{"127.0.0.10", "10.1.1.1"}); !errors.Is(err, ErrNotLoopback) {
		t.Fatalf("non-loopback source: err = %v", err)
	}
	if _, err := ParseSources([]string{"nope"}); err == nil {
		t.Fatal("a non-IP source was accepted")
	}
}

func TestRunRefusesNonLoopback(t *testing.T) {
	_, err := Run(context.Background(), Config{Target: "https://192.0.2.1:443", Duration: time.Second})
	if !errors.Is(err, ErrNotLoopback) {
		t.Fatalf("Run to 192.0.2.1: err = %v, want ErrNotLoopback", err)
	}
	_, err = Run(context.Background(), Config{Target: "https://127.0.0.1:1", Duration: time.Second, Sources: []net.IP{net.ParseIP("192.0.2.1")}})
	if !errors.Is(err, ErrNotLoopback) {
		t.Fatalf("Run from 192.0.2.1: err = %v, want ErrNotLoopback", err)
	}
}

func TestParseStatCPU(t *testing.T) {
	tests := []struct {
		line string
		want time.Duration
		ok   bool
	}{
		{"1234 (nginx: worker) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0 100 0 0", 3 * time.Second, true},
		{"1 (a) b) R 1 2 3 4 5 6 7 8 9 10 1 2 0 0", 30 * time.Millisecond, true},
		{"garbage", 0, false},
		{"1 (x) S 1 2", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			got, err := parseStatCPU(tt.line)
			if (err == nil) != tt.ok || got != tt.want {
				t.Fatalf("parseStatCPU = %v, %v; want %v, ok=%v", got, err, tt.want, tt.ok)
			}
		})
	}
}

// TestServePprof: the profiling endpoint serves on loopback and refuses
// any other address.
func TestServePprof(t *testing.T) {
	for _, tc := range []struct {
		addr    string
		wantErr bool
	}{
		{"127.0.0.1:0", false},
		{"0.0.0.0:0", true},
		{"localhost:0", true}, // a name: give the IP
		{"127.0.0.1", true},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			got, err := ServePprof(tc.addr)
			if (err != nil) != tc.wantErr {
				t.Fatalf("ServePprof(%q) = %q, %v; want error %v", tc.addr, got, err, tc.wantErr)
			}
			if err != nil {
				return
			}
			resp, err := http.Get("http://" + got + "/debug/pprof/goroutine?debug=1")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "goroutine profile") {
				t.Fatalf("status %d, body %.80q", resp.StatusCode, b)
			}
		})
	}
}
