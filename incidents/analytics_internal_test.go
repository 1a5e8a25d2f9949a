package incidents

import (
	"math/rand/v2"
	"testing"
)

// quantiles agrees with histogram.quantile, the estimator the stats use.
func TestQuantilesMatchQuantile(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		var h histogram
		var n int64
		for j := 0; j < 1+rng.IntN(1+i%50); j++ { // small n puts the ranks out of order
			c := int64(1 + rng.IntN(2))
			h[1+rng.IntN(histSlots-1)] += c
			n += c
		}
		p50, p90 := quantiles(&h, n)
		if *p50 != h.quantile(0.5, n) || *p90 != h.quantile(0.9, n) {
			t.Fatalf("n=%d: quantiles %v %v, quantile %v %v", n, *p50, *p90, h.quantile(0.5, n), h.quantile(0.9, n))
		}
	}
	if a, b := quantiles(nil, 0); a != nil || b != nil {
		t.Fatal("no values, no quantiles")
	}
}
