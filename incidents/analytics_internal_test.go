package incidents

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// quantiles over a span histogram agrees with histogram.quantile, the
// estimator the stats use, whether the span was built slot by slot, from
// column bytes or by merging.
func TestQuantilesMatchQuantile(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		var h histogram
		var bumped, merged spanHist
		var n int64
		for j := 0; j < 1+rng.IntN(1+i%50); j++ { // small n puts the ranks out of order
			c := int64(1 + rng.IntN(2))
			slot := 1 + rng.IntN(histSlots-1)
			h[slot] += c
			bumped.bump(slot, c)
			var one spanHist
			one.addRaw(rawHist(slot, c), new(slab))
			merged.add(&one)
			n += c
		}
		for _, s := range []*spanHist{&bumped, &merged} {
			p50, p90 := quantiles(s, n)
			if p50 != h.quantile(0.5, n) || p90 != h.quantile(0.9, n) {
				t.Fatalf("n=%d: quantiles %v %v, quantile %v %v", n, p50, p90, h.quantile(0.5, n), h.quantile(0.9, n))
			}
		}
	}
	var f floats
	if a, b := f.quantiles(&spanHist{}, 0); a != nil || b != nil {
		t.Fatal("no values, no quantiles")
	}
}

// rawHist is the column bytes of a histogram with one slot set.
func rawHist(slot int, c int64) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(slot))
	return binary.BigEndian.AppendUint32(b, uint32(int32(c)))
}

// A span histogram read from a wide column holds every slot of it.
func TestSpanHistAddRaw(t *testing.T) {
	raw := binary.BigEndian.AppendUint16(nil, 240)
	for _, c := range []int32{1, 2, 3, 4} { // slots 240..243: the last is past the layout
		raw = binary.BigEndian.AppendUint32(raw, uint32(c))
	}
	var s spanHist
	s.addRaw(raw, nil)
	s.addRaw(rawHist(3, 5), new(slab))
	if s.lo != 3 || len(s.c) != histSlots-3 || s.c[0] != 5 || s.c[240-3] != 1 || s.c[242-3] != 3 {
		t.Fatalf("span lo=%d len=%d", s.lo, len(s.c))
	}
}
