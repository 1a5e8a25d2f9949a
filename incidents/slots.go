package incidents

import (
	"context"
	"fmt"
	"math"
	"sort"
	"sync"
)

// slotEdges holds, for each histogram slot k from 2 up, the smallest
// duration that the server's incidents_duration_bucket puts in slot k or
// above. The rollups bin durations in SQL (a logarithm from the server's
// C library); the window edges of the analytics bin base-table rows in Go,
// and a row must land where the rollups counted it, to the last bit, even
// on a boundary where Go's math.Log and the server's log() round apart.
// So the boundaries are read off the server once per Store, by bisection
// over float64 bit patterns (the function is monotonic).
type slotEdges [histSlots]float64

// slot returns the histogram slot of a duration; NaN (no value) is 0.
func (e *slotEdges) slot(s float64) int32 {
	switch {
	case math.IsNaN(s):
		return 0
	case s < histMin:
		return 1
	}
	// The last k in 2..242 with e[k] <= s.
	k := sort.Search(histOverflow-1, func(i int) bool { return e[i+2] > s }) + 1
	return int32(k)
}

// slotCalibration caches a Store's slot edges.
type slotCalibration struct {
	mu    sync.Mutex
	edges *slotEdges
}

// slotEdges returns the store's slot boundaries, reading them from the
// server the first time.
func (s *Store) slotEdges(ctx context.Context) (*slotEdges, error) {
	c := &s.slots
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.edges != nil {
		return c.edges, nil
	}
	e, err := s.calibrateSlots(ctx)
	if err != nil {
		return nil, errAnalytics(fmt.Errorf("reading the histogram slot boundaries: %w", err))
	}
	c.edges = e
	return e, nil
}

func (s *Store) calibrateSlots(ctx context.Context) (*slotEdges, error) {
	const first = 3 // slot 2 starts at exactly 1/16 s (ln 1 = 0)
	n := histOverflow - first + 1
	lo, hi := make([]uint64, n), make([]uint64, n) // bits: slot(lo) < k <= slot(hi)
	for i := range lo {
		g := math.Float64bits(histMin * math.Pow(2, float64(i+first-2)/histPerDoubling))
		lo[i], hi[i] = g-64, g+64
	}
	buckets := func(bits []uint64) ([]int32, error) {
		v := make([]float64, len(bits))
		for i, b := range bits {
			v[i] = math.Float64frombits(b)
		}
		var out []int32
		err := s.pool.QueryRow(ctx, `SELECT array_agg(incidents_duration_bucket(v) ORDER BY i)
			FROM unnest($1::float8[]) WITH ORDINALITY AS u(v, i)`, v).Scan(&out)
		if err == nil && len(out) != len(v) {
			err = fmt.Errorf("%d slots for %d values", len(out), len(v))
		}
		return out, err
	}
	// Check the brackets, widening any that miss (never seen: the two
	// logarithms agree to a few units in the last place).
	for widen := uint64(64); ; widen *= 1024 {
		probe := append(append([]uint64{}, lo...), hi...)
		got, err := buckets(probe)
		if err != nil {
			return nil, err
		}
		ok := true
		for i := range lo {
			k := int32(i + first)
			if got[i] >= k {
				lo[i], ok = lo[i]-widen*1024, false
			}
			if got[n+i] < k {
				hi[i], ok = hi[i]+widen*1024, false
			}
		}
		if ok {
			break
		}
		if widen > 1<<40 {
			return nil, fmt.Errorf("incidents_duration_bucket is not the schema's")
		}
	}
	for {
		mid := make([]uint64, n)
		done := true
		for i := range lo {
			mid[i] = lo[i] + (hi[i]-lo[i])/2
			done = done && hi[i]-lo[i] <= 1
		}
		if done {
			break
		}
		got, err := buckets(mid)
		if err != nil {
			return nil, err
		}
		for i := range mid {
			if got[i] >= int32(i+first) {
				hi[i] = mid[i]
			} else {
				lo[i] = mid[i]
			}
		}
	}
	e := new(slotEdges)
	e[2] = histMin
	for i := range hi {
		e[i+first] = math.Float64frombits(hi[i])
	}
	return e, nil
}
