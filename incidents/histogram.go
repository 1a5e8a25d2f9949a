package incidents

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math"
	"strings"
	"sync"
)

// Histogram layout, shared with the SQL function incidents_duration_bucket:
// slot 0 is scratch, slot 1 holds durations under 1/16 s, slots 2..241 are
// log buckets with 8 per doubling starting at 1/16 s, and slot 242 holds
// durations from 2^26 s (about 2.1 years) up.
const (
	histSlots       = 243
	histMin         = 1.0 / 16
	histPerDoubling = 8
	histOverflow    = 242
)

// PercentileRelativeError is the bound on the relative error of a percentile
// read from the rollup histograms, for durations between 1/16 s and 2^26 s:
// each bucket spans a factor 2^(1/8) and is represented by its geometric
// midpoint, so no estimate is further than 2^(1/16)-1 (about 4.43%) from
// the exact percentile_cont value. Below 1/16 s the error is at most
// [PercentileAbsoluteError]; above 2^26 s estimates are clamped to 2^26 s.
var PercentileRelativeError = math.Pow(2, 1.0/(2*histPerDoubling)) - 1

// PercentileAbsoluteError bounds the error for durations under 1/16 s.
const PercentileAbsoluteError = 1.0 / 32

type histogram [histSlots]int64

// representative returns the value that stands for every duration in slot b.
func representative(b int) float64 {
	switch {
	case b <= 1:
		return reps[1]
	case b >= histOverflow:
		return reps[histOverflow]
	}
	return reps[b]
}

// reps holds each slot's representative (computed once: a trend reads
// thousands of histograms).
var reps = func() (r [histSlots]float64) {
	r[0], r[1] = histMin/2, histMin/2
	for b := 2; b < histOverflow; b++ {
		r[b] = histMin * math.Pow(2, (float64(b-2)+0.5)/histPerDoubling)
	}
	r[histOverflow] = histMin * math.Pow(2, float64(histOverflow-2)/histPerDoubling)
	return r
}()

// valueAt returns the representative of the rank-th smallest value (0-based).
func (h *histogram) valueAt(rank int64) float64 {
	var seen int64
	for b := 1; b < histSlots; b++ {
		seen += h[b]
		if rank < seen {
			return representative(b)
		}
	}
	return representative(histOverflow)
}

// quantile estimates percentile_cont(q) over the n values in h: the same
// linear interpolation between neighbouring ranks, applied to bucket
// representatives. Each representative is within the bucket's relative
// error of the value it stands for, and interpolation with non-negative
// weights keeps that bound.
func (h *histogram) quantile(q float64, n int64) float64 {
	if n <= 0 {
		return math.NaN()
	}
	pos := q * float64(n-1)
	lo := int64(math.Floor(pos))
	hi := int64(math.Ceil(pos))
	vlo := h.valueAt(lo)
	if hi == lo {
		return vlo
	}
	vhi := h.valueAt(hi)
	return vlo + (pos-float64(lo))*(vhi-vlo)
}

func (h *histogram) add(o *histogram) {
	for i := range h {
		h[i] += o[i]
	}
}

// addRaw adds a histogram column, in binary or text (hex) format, slot by
// slot into h. The column is empty, or a big-endian uint16 first slot
// followed by one big-endian int32 counter per slot (see
// incidents_hist_get in the schema).
func (h *histogram) addRaw(raw []byte, binaryFormat bool) error {
	if !binaryFormat && len(raw) > 0 {
		s := string(raw)
		if !strings.HasPrefix(s, `\x`) {
			return errors.New("incidents: histogram is not hex bytea text")
		}
		b, err := hex.DecodeString(s[2:])
		if err != nil {
			return errors.New("incidents: malformed histogram text")
		}
		raw = b
	}
	if len(raw) == 0 {
		return nil
	}
	if len(raw) < 6 || (len(raw)-2)%4 != 0 {
		return errors.New("incidents: malformed histogram")
	}
	lo := int(binary.BigEndian.Uint16(raw))
	for i, p := 0, raw[2:]; len(p) >= 4; i, p = i+1, p[4:] {
		if slot := lo + i; slot < histSlots {
			h[slot] += int64(int32(binary.BigEndian.Uint32(p)))
		}
	}
	return nil
}

// spanHist is a histogram that holds only the span of slots in use: the
// accumulations of a trend number in the thousands, and a dense histogram
// is 1.9 KB. The zero value is empty.
type spanHist struct {
	lo int     // first slot held
	c  []int64 // c[i] counts slot lo+i
}

// slab hands out zeroed counter slices carved from large blocks: one
// allocation for the histograms of many trend points. A nil *slab
// allocates each slice on its own. The zero value allocates its blocks;
// a slab from newSlab reuses blocks that release gave back, for a read
// whose counters are garbage once its answer is computed.
type slab struct {
	free   []int64
	pooled bool
	used   []*[slabBlock]int64 // blocks taken from slabBlocks
}

const slabBlock = 16 << 10 // counters per block (128 KiB)

// slabBlocks holds zeroed blocks between reads.
var slabBlocks sync.Pool

func newSlab() *slab { return &slab{pooled: true} }

func (s *slab) take(n int) []int64 {
	if s == nil || n > slabBlock/8 {
		return make([]int64, n)
	}
	if len(s.free) < n {
		s.free = s.block()
	}
	c := s.free[:n:n]
	s.free = s.free[n:]
	return c
}

func (s *slab) block() []int64 {
	if !s.pooled {
		return make([]int64, slabBlock)
	}
	b, _ := slabBlocks.Get().(*[slabBlock]int64)
	if b == nil {
		b = new([slabBlock]int64)
	}
	s.used = append(s.used, b)
	return b[:]
}

// release zeroes the blocks of a slab from newSlab and gives them back;
// no counter taken from s may be used afterwards.
func (s *slab) release() {
	for i, b := range s.used {
		n := slabBlock
		if i == len(s.used)-1 {
			n -= len(s.free)
		}
		clear(b[:n])
		slabBlocks.Put(b)
	}
	s.used, s.free = nil, nil
}

// cover widens the span to hold slots lo..hi, taking new counters from sl.
func (h *spanHist) cover(lo, hi int, sl *slab) {
	if len(h.c) == 0 {
		h.lo, h.c = lo, sl.take(hi-lo+1)
		return
	}
	curHi := h.lo + len(h.c) - 1
	if lo >= h.lo && hi <= curHi {
		return
	}
	nlo, nhi := min(lo, h.lo), max(hi, curHi)
	c := sl.take(nhi - nlo + 1)
	copy(c[h.lo-nlo:], h.c)
	h.lo, h.c = nlo, c
}

// bump adds w to one slot.
func (h *spanHist) bump(slot int, w int64) {
	h.cover(slot, slot, nil)
	h.c[slot-h.lo] += w
}

// addRaw adds a binary histogram column (see histogram.addRaw), with new
// counters from sl; the caller has checked its length.
func (h *spanHist) addRaw(raw []byte, sl *slab) {
	if len(raw) < 6 {
		return
	}
	lo := int(binary.BigEndian.Uint16(raw))
	n := (len(raw) - 2) / 4
	if lo >= histSlots {
		return
	}
	n = min(n, histSlots-lo)
	h.cover(lo, lo+n-1, sl)
	c := h.c[lo-h.lo:]
	for i, p := 0, raw[2:]; i < n; i, p = i+1, p[4:] {
		c[i] += int64(int32(binary.BigEndian.Uint32(p)))
	}
}

// add merges o into h.
func (h *spanHist) add(o *spanHist) {
	if len(o.c) == 0 {
		return
	}
	h.cover(o.lo, o.lo+len(o.c)-1, nil)
	c := h.c[o.lo-h.lo:]
	for i, v := range o.c {
		c[i] += v
	}
}

// packedHist is a histogram as the packed column holds it (migration
// 0008): n counters of w bytes (1, 2 or 4) from slot lo; w 0 is empty.
type packedHist struct {
	w, lo, n int
	b        []byte
}

// decode reads one packed histogram off the front of p and returns the
// rest; h.b aliases p.
func (h *packedHist) decode(p []byte) ([]byte, error) {
	if len(p) < 1 {
		return nil, errMalformedRow
	}
	h.w, p = int(p[0]), p[1:]
	switch h.w {
	case 0:
		h.lo, h.n, h.b = 0, 0, nil
		return p, nil
	case 1, 2, 4:
	default:
		return nil, errMalformedRow
	}
	if len(p) < 4 {
		return nil, errMalformedRow
	}
	h.n, h.lo = int(binary.BigEndian.Uint16(p)), int(binary.BigEndian.Uint16(p[2:]))
	p = p[4:]
	if h.n == 0 || len(p) < h.n*h.w {
		return nil, errMalformedRow
	}
	h.b, p = p[:h.n*h.w], p[h.n*h.w:]
	return p, nil
}

// addPacked adds a packed histogram, with new counters from sl.
func (h *spanHist) addPacked(p *packedHist, sl *slab) {
	n := min(p.n, histSlots-p.lo)
	if p.w == 0 || n <= 0 {
		return
	}
	h.cover(p.lo, p.lo+n-1, sl)
	c := h.c[p.lo-h.lo:]
	switch p.w {
	case 1:
		for i, v := range p.b[:n] {
			c[i] += int64(v)
		}
	case 2:
		for i := range n {
			c[i] += int64(binary.BigEndian.Uint16(p.b[2*i:]))
		}
	default:
		for i := range n {
			c[i] += int64(int32(binary.BigEndian.Uint32(p.b[4*i:])))
		}
	}
}
