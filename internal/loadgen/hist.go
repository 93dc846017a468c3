package loadgen

import (
	"math"
	"math/bits"
)

// histogram is an HDR-style log-linear histogram of non-negative int64
// values (nanoseconds here): every power of two is split into histSub equal
// buckets, so a recorded value is known to within 1/histSub (0.8%) of itself,
// from 1 ns to the largest int64, in a fixed 58 KiB array. Recording is an
// index computation and an increment: no allocation, no sorting.
type histogram struct {
	counts     [histBuckets]uint64
	total      uint64
	sum        float64
	min, max   int64
	hasSamples bool
}

const (
	histSubBits = 7
	histSub     = 1 << histSubBits
	// Values below histSub get a bucket each; above, the power of two 2^n
	// (n = bits.Len64(v)-1, at most 63) gets histSub buckets at offset
	// (n-histSubBits+1)*histSub.
	histBuckets = (64 - histSubBits + 1) * histSub
)

func histIndex(v uint64) int {
	if v < histSub {
		return int(v)
	}
	s := bits.Len64(v) - histSubBits - 1 // >= 0
	m := v >> uint(s)                    // in [histSub, 2*histSub)
	return (s+1)<<histSubBits + int(m-histSub)
}

// histBounds returns the lowest and highest value that fall in bucket i.
func histBounds(i int) (lo, hi uint64) {
	if i < histSub {
		return uint64(i), uint64(i)
	}
	s := uint(i>>histSubBits - 1)
	m := uint64(histSub + i&(histSub-1))
	return m << s, (m+1)<<s - 1
}

func (h *histogram) record(v int64) {
	if v < 0 {
		v = 0
	}
	h.counts[histIndex(uint64(v))]++
	h.total++
	h.sum += float64(v)
	if !h.hasSamples || v < h.min {
		h.min = v
	}
	if !h.hasSamples || v > h.max {
		h.max = v
	}
	h.hasSamples = true
}

func (h *histogram) merge(o *histogram) {
	if !o.hasSamples {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
	h.sum += o.sum
	if !h.hasSamples || o.min < h.min {
		h.min = o.min
	}
	if !h.hasSamples || o.max > h.max {
		h.max = o.max
	}
	h.hasSamples = true
}

// quantile returns the value at quantile q (0 < q <= 1): the highest value
// of the bucket that holds the ceil(q*total)-th smallest sample, as HDR
// Histogram's ValueAtQuantile does, never above the exact maximum.
func (h *histogram) quantile(q float64) int64 {
	if h.total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.total)))
	if rank < 1 {
		rank = 1
	}
	if rank > h.total {
		rank = h.total
	}
	var cum uint64
	for i, c := range h.counts {
		cum += c
		if cum >= rank {
			_, hi := histBounds(i)
			if hi > math.MaxInt64 || int64(hi) > h.max {
				return h.max
			}
			if int64(hi) < h.min {
				return h.min
			}
			return int64(hi)
		}
	}
	return h.max
}

func (h *histogram) mean() float64 {
	if h.total == 0 {
		return 0
	}
	return h.sum / float64(h.total)
}
