package loadgen

import (
	"math"
	"math/bits"
	"sync/atomic"
)

// The histogram is log-linear, in the manner of HdrHistogram: values below
// linearMax are counted exactly, and every octave above is cut into
// subCount equal buckets, so a bucket is at most 1/subCount (0.8 %) of the
// values it holds wide, and its midpoint is within 0.4 % of any of them.
const (
	subBits   = 7
	subCount  = 1 << subBits // buckets per octave above the linear range
	linearMax = 2 * subCount // values below are counted exactly
	// maxShift bounds the octaves tracked: values up to 2^(maxShift+subBits+1)
	// ns (about 4.9 hours) land in their own buckets, larger ones in the last.
	maxShift   = 36
	numBuckets = linearMax + maxShift*subCount
)

// bucketOf returns the index of the bucket that counts v (negative values
// count as zero).
func bucketOf(v int64) int {
	if v < linearMax {
		return int(max(v, 0))
	}
	s := bits.Len64(uint64(v)) - (subBits + 1)
	if s > maxShift {
		return numBuckets - 1
	}
	return linearMax + (s-1)*subCount + int(uint64(v)>>s) - subCount
}

// bucketRange returns the smallest and largest values that bucket i counts.
func bucketRange(i int) (lo, hi int64) {
	if i < linearMax {
		return int64(i), int64(i)
	}
	k := i - linearMax
	s := uint(k/subCount + 1)
	m := int64(k%subCount + subCount)
	return m << s, (m+1)<<s - 1
}

// histogram records non-negative values (nanoseconds here) from many
// goroutines at once with atomic additions.
type histogram struct {
	counts [numBuckets]atomic.Uint64
	n      atomic.Uint64
	sum    atomic.Uint64
	min    atomic.Int64 // valid when n > 0; starts at math.MaxInt64
	max    atomic.Int64
}

func newHistogram() *histogram {
	h := &histogram{}
	h.min.Store(math.MaxInt64)
	return h
}

// record counts v.
func (h *histogram) record(v int64) {
	v = max(v, 0)
	h.counts[bucketOf(v)].Add(1)
	h.n.Add(1)
	h.sum.Add(uint64(v))
	for {
		cur := h.max.Load()
		if v <= cur || h.max.CompareAndSwap(cur, v) {
			break
		}
	}
	for {
		cur := h.min.Load()
		if v >= cur || h.min.CompareAndSwap(cur, v) {
			break
		}
	}
}

// merge adds the counts of o to h. Neither may be recorded into meanwhile
// for the result to be exact.
func (h *histogram) merge(o *histogram) {
	if o.n.Load() == 0 {
		return
	}
	for i := range o.counts {
		if c := o.counts[i].Load(); c != 0 {
			h.counts[i].Add(c)
		}
	}
	h.n.Add(o.n.Load())
	h.sum.Add(o.sum.Load())
	if m := o.max.Load(); m > h.max.Load() {
		h.max.Store(m)
	}
	if m := o.min.Load(); m < h.min.Load() {
		h.min.Store(m)
	}
}

// quantile returns the value at quantile q (0 < q ≤ 1): the midpoint of the
// bucket holding the ⌈q·n⌉-th smallest value, clamped to the recorded
// minimum and maximum. It returns 0 for an empty histogram.
func (h *histogram) quantile(q float64) int64 {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	rank = min(max(rank, 1), n)
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			lo, hi := bucketRange(i)
			v := lo + (hi-lo)/2
			return min(max(v, h.min.Load()), h.max.Load())
		}
	}
	return h.max.Load()
}

// Summary is a histogram's count and percentiles, in nanoseconds.
type Summary struct {
	Count uint64 `json:"count"`
	Min   int64  `json:"min"`
	Mean  int64  `json:"mean"`
	P50   int64  `json:"p50"`
	P90   int64  `json:"p90"`
	P99   int64  `json:"p99"`
	P999  int64  `json:"p999"`
	Max   int64  `json:"max"`
}

// summary returns h's percentiles, or nil when h is empty.
func (h *histogram) summary() *Summary {
	n := h.n.Load()
	if n == 0 {
		return nil
	}
	return &Summary{
		Count: n,
		Min:   h.min.Load(),
		Mean:  int64(h.sum.Load() / n),
		P50:   h.quantile(0.50),
		P90:   h.quantile(0.90),
		P99:   h.quantile(0.99),
		P999:  h.quantile(0.999),
		Max:   h.max.Load(),
	}
}
