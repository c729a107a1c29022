package loadgen

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// subBits sets the histogram's resolution: each power of two is split into
// 2^subBits linear buckets, so a bucket is at most 1/128 (0.8 %) wide
// relative to its values.
const subBits = 7

const (
	subCount  = 1 << subBits
	numBucket = (64 - subBits) * subCount
)

// Histogram counts durations (nanoseconds) in log-linear buckets, HDR-style:
// constant relative precision from 1 ns to centuries in 58 KiB. Record is
// safe for concurrent use; the zero value is not ready, use NewHistogram.
type Histogram struct {
	counts []atomic.Uint64
	total  atomic.Uint64
	sum    atomic.Uint64
	max    atomic.Int64
}

// NewHistogram returns an empty histogram.
func NewHistogram() *Histogram {
	return &Histogram{counts: make([]atomic.Uint64, numBucket)}
}

// bucketOf returns the bucket index of v (v >= 0).
func bucketOf(v int64) int {
	if v < 0 {
		v = 0
	}
	u := uint64(v)
	e := bits.Len64(u) - (subBits + 1)
	if e <= 0 {
		return int(u)
	}
	return e*subCount + int(u>>uint(e))
}

// bucketRange returns the smallest and largest value bucket i holds.
func bucketRange(i int) (lo, hi int64) {
	if i < 2*subCount {
		return int64(i), int64(i)
	}
	e := i/subCount - 1
	m := int64(i%subCount + subCount)
	return m << uint(e), ((m + 1) << uint(e)) - 1
}

// Record adds one observation.
func (h *Histogram) Record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	h.counts[bucketOf(v)].Add(1)
	h.total.Add(1)
	h.sum.Add(uint64(v))
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			return
		}
	}
}

// Count returns the number of observations.
func (h *Histogram) Count() uint64 { return h.total.Load() }

// Max returns the largest observation.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max.Load()) }

// Mean returns the mean observation, 0 when empty.
func (h *Histogram) Mean() time.Duration {
	n := h.total.Load()
	if n == 0 {
		return 0
	}
	return time.Duration(h.sum.Load() / n)
}

// Quantile returns the value at quantile q (0 < q <= 1): the midpoint of the
// bucket holding the ceil(q*count)-th smallest observation, capped at the
// maximum. It returns 0 for an empty histogram.
func (h *Histogram) Quantile(q float64) time.Duration {
	n := h.total.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			lo, hi := bucketRange(i)
			mid := lo + (hi-lo)/2
			if m := h.max.Load(); mid > m {
				mid = m
			}
			return time.Duration(mid)
		}
	}
	return h.Max()
}

// Sparse returns the non-empty buckets, index → count, for a JSON report a
// parent process merges.
func (h *Histogram) Sparse() map[int]uint64 {
	out := make(map[int]uint64)
	for i := range h.counts {
		if c := h.counts[i].Load(); c > 0 {
			out[i] = c
		}
	}
	return out
}

// Merge adds another histogram's sparse buckets, with its sum and max.
// Bucket indexes out of range are ignored.
func (h *Histogram) Merge(buckets map[int]uint64, sum uint64, max time.Duration) {
	for i, c := range buckets {
		if i < 0 || i >= len(h.counts) {
			continue
		}
		h.counts[i].Add(c)
		h.total.Add(c)
	}
	h.sum.Add(sum)
	for {
		m := h.max.Load()
		if int64(max) <= m || h.max.CompareAndSwap(m, int64(max)) {
			return
		}
	}
}

// Sum returns the sum of all observations in nanoseconds.
func (h *Histogram) Sum() uint64 { return h.sum.Load() }
