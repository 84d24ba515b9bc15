package loadgen

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
)

func TestBucketRange(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		v := int64(math.Exp(r.Float64() * 30)) // 1 ns to ~10 s, log-uniform
		if r.IntN(10) == 0 {
			v = r.Int64N(1000)
		}
		i := bucketOf(v)
		lo, hi := bucketRange(i)
		if v < lo || v > hi {
			t.Fatalf("value %d in bucket %d = [%d, %d]", v, i, lo, hi)
		}
		if float64(hi-lo) > float64(v)/subCount {
			t.Fatalf("bucket [%d, %d] of %d is wider than 1/%d of it", lo, hi, v, subCount)
		}
	}
	// Buckets tile the line: each starts right after the previous one.
	for i := 1; i < numBuckets; i++ {
		_, prevHi := bucketRange(i - 1)
		if lo, _ := bucketRange(i); lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, after %d", i, lo, prevHi)
		}
	}
	if bucketOf(math.MaxInt64) != numBuckets-1 || bucketOf(-5) != 0 {
		t.Errorf("out-of-range values are not clamped")
	}
}

func TestHistogramPercentiles(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{1, 7, 1000, 100000} {
		h := newHistogram()
		vals := make([]int64, n)
		for i := range vals {
			// A latency-like mixture: a body around 100 µs and a long tail.
			v := int64(100e3 * math.Exp(r.NormFloat64()*0.5))
			if r.IntN(100) == 0 {
				v = int64(r.Float64() * 50e6)
			}
			vals[i] = v
			h.record(v)
		}
		slices.Sort(vals)
		s := h.summary()
		if s.Count != uint64(n) || s.Min != vals[0] || s.Max != vals[n-1] {
			t.Fatalf("n=%d: count %d min %d max %d, want %d %d %d", n, s.Count, s.Min, s.Max, n, vals[0], vals[n-1])
		}
		var sum int64
		for _, v := range vals {
			sum += v
		}
		if s.Mean != sum/int64(n) {
			t.Errorf("n=%d: mean %d, want %d", n, s.Mean, sum/int64(n))
		}
		for _, c := range []struct {
			q   float64
			got int64
		}{{0.5, s.P50}, {0.9, s.P90}, {0.99, s.P99}, {0.999, s.P999}} {
			rank := int(math.Ceil(c.q * float64(n)))
			want := vals[max(rank, 1)-1]
			if d := math.Abs(float64(c.got - want)); d > 0.01*float64(want)+1 {
				t.Errorf("n=%d: p%v = %d, want %d within 1%%", n, c.q*100, c.got, want)
			}
		}
	}
	if newHistogram().summary() != nil {
		t.Error("an empty histogram has a summary")
	}
}

func TestHistogramConcurrentAndMerge(t *testing.T) {
	a, b := newHistogram(), newHistogram()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			h := a
			if g%2 == 1 {
				h = b
			}
			for i := range 10000 {
				h.record(int64(i))
			}
		})
	}
	wg.Wait()
	a.merge(b)
	s := a.summary()
	if s.Count != 40000 || s.Min != 0 || s.Max != 9999 {
		t.Fatalf("merged summary %+v", s)
	}
	if d := s.P50 - 4999; d < -50 || d > 50 {
		t.Errorf("p50 %d, want about 4999", s.P50)
	}
}
