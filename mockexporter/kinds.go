package mockexporter

import (
	"math"
	"slices"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Summaries and gauge histograms describe a sliding window of
// observations: the simulated ones and the explicit ones (Observe).
//
// The simulated observations of the window [now-MaxAge, now] (from the
// series' birth or last reset at the earliest) are represented by the
// series' source read at windowSamples evenly spaced instants, each
// standing for ObservationsPerSecond × window / windowSamples
// observations; the explicit ones of the window (the latest
// maxWindowObservations) count 1 each. A summary's quantiles are the
// weighted quantiles of that set (the smallest value whose cumulative
// weight reaches q of the total; NaN for an empty window, as client_golang
// answers), its count and sum are cumulative like a histogram's. A gauge
// histogram's buckets, gcount and gsum are that set's distribution (floored
// cumulative weights).
const (
	windowSamples         = 100
	maxWindowObservations = 128
	defaultMaxAge         = 10 * time.Minute
	maxMaxAge             = 24 * time.Hour
)

// DefQuantiles are a summary's default quantiles.
var DefQuantiles = []float64{0.5, 0.9, 0.99}

type observation struct {
	at time.Time
	v  float64
}

// checkKind checks and fills in the options of the observed types.
func (r *Registry) checkKind(m *MetricOptions) error {
	if !m.Type.bucketed() && m.Buckets != nil {
		return validationf("buckets", "only histograms have buckets")
	}
	if m.Type != Histogram && m.NativeBucketFactor != 0 {
		return validationf("native_bucket_factor", "only histograms have native buckets")
	}
	if m.Type != Summary && m.Quantiles != nil {
		return validationf("quantiles", "only summaries have quantiles")
	}
	if m.Type != Counter && m.Type != Histogram && (m.Exemplars || m.ExemplarSeed != 0) {
		return validationf("exemplars", "only counters and histograms have exemplars")
	}
	if m.Type != Summary && m.Type != GaugeHistogram && m.MaxAge != 0 {
		return validationf("max_age", "only summaries and gauge histograms have a window")
	}
	if !m.Type.observed() {
		return nil
	}
	if m.NativeBucketFactor != 0 && (math.IsNaN(m.NativeBucketFactor) || m.NativeBucketFactor <= 1 || m.NativeBucketFactor > 1e6) {
		return validationf("native_bucket_factor", "must be above 1 (1.1: buckets 10 %% wide), got %v", m.NativeBucketFactor)
	}
	if m.Type.bucketed() {
		if err := r.checkBuckets(m); err != nil {
			return err
		}
	} else if err := checkObservationRate(m); err != nil {
		return err
	}
	if m.MaxAge == 0 {
		m.MaxAge = Duration(defaultMaxAge)
	}
	if m.MaxAge < Duration(time.Second) || m.MaxAge > Duration(maxMaxAge) {
		return validationf("max_age", "must be between 1s and 24h")
	}
	if m.Type == Summary {
		return r.checkQuantiles(m)
	}
	return nil
}

func checkObservationRate(m *MetricOptions) error {
	if m.ObservationsPerSecond == 0 {
		m.ObservationsPerSecond = 1
	}
	if err := finite("observations_per_second", m.ObservationsPerSecond); err != nil || m.ObservationsPerSecond < 0 || m.ObservationsPerSecond > 1e6 {
		return validationf("observations_per_second", "must be between 0 and 1e6")
	}
	return nil
}

func (r *Registry) checkQuantiles(m *MetricOptions) error {
	if m.Quantiles == nil {
		m.Quantiles = DefQuantiles
	}
	if len(m.Quantiles) == 0 || len(m.Quantiles) > r.opts.MaxBuckets {
		return validationf("quantiles", "need 1 to %d quantiles (MaxBuckets)", r.opts.MaxBuckets)
	}
	for i, q := range m.Quantiles {
		if !(q > 0 && q < 1) || (i > 0 && q <= m.Quantiles[i-1]) {
			return validationf("quantiles", "must be strictly increasing, each in (0, 1)")
		}
	}
	m.Quantiles = slices.Clone(m.Quantiles)
	return nil
}

// initKind allocates what a new series (born now) of its family's type
// holds.
func (s *series) initKind(now time.Time) {
	f := s.fam
	if f.opts.Type.bucketed() && len(f.opts.Buckets) > 0 {
		s.buckets = make([]float64, len(f.opts.Buckets)+1)
	}
	if !f.opts.Type.observed() && !f.opts.Exemplars {
		return
	}
	s.seriesExtra = &seriesExtra{born: now}
	if f.nativeMax > 0 {
		s.native = newNative(f)
	}
	s.initExemplars()
}

// observeExplicit records one explicit observation at now.
func (s *series) observeExplicit(v float64, now time.Time) {
	switch s.fam.opts.Type {
	case Histogram:
		s.observe(v, 1)
		s.added++
		s.recordExemplar(v, now)
		return
	case Summary:
		s.sum = capFinite(s.sum + v)
		s.added++
	}
	if len(s.obs) == maxWindowObservations {
		s.obs = slices.Delete(s.obs, 0, 1)
	}
	s.obs = append(s.obs, observation{at: now, v: v})
}

// integrateSummary is the summary's part of integrate: count and sum.
func (s *series) integrateSummary(v, w float64) {
	s.sum = capFinite(s.sum + v*w)
	s.acc += w
}

// windowSet is the weighted observations of a window.
type windowSet struct {
	vals, weights []float64
	total, sum    float64
}

// window collects the observations of the window ending at now.
func (s *series) window(now time.Time) windowSet {
	var ws windowSet
	age := time.Duration(s.fam.opts.MaxAge)
	from := now.Add(-age)
	if s.born.After(from) {
		from = s.born
	}
	if span := now.Sub(from); span > 0 {
		step := span / windowSamples
		w := s.fam.opts.ObservationsPerSecond * span.Seconds() / windowSamples
		for j := range windowSamples {
			t := from.Add(step*time.Duration(j) + step/2)
			src, el, _ := s.effective(t)
			v := s.fam.opts.Range.shape(src.Value(t, el))
			ws.add(v, w)
		}
	}
	for _, o := range s.obs {
		if !o.at.Before(now.Add(-age)) && !o.at.After(now) {
			ws.add(o.v, 1)
		}
	}
	return ws
}

func (ws *windowSet) add(v, w float64) {
	if w <= 0 {
		return
	}
	ws.vals = append(ws.vals, v)
	ws.weights = append(ws.weights, w)
	ws.total += w
	ws.sum = capFinite(ws.sum + v*w)
}

// quantile is the smallest value whose cumulative weight reaches q of the
// total (NaN when empty). ws must be sorted (sortByValue).
func (ws *windowSet) quantile(q float64) float64 {
	if ws.total == 0 {
		return math.NaN()
	}
	target, cum := q*ws.total, 0.0
	for i, w := range ws.weights {
		cum += w
		if cum >= target-1e-9 {
			return ws.vals[i]
		}
	}
	return ws.vals[len(ws.vals)-1]
}

func (ws *windowSet) sortByValue() {
	idx := make([]int, len(ws.vals))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return ws.vals[idx[a]] < ws.vals[idx[b]] })
	vals, weights := make([]float64, len(idx)), make([]float64, len(idx))
	for i, j := range idx {
		vals[i], weights[i] = ws.vals[j], ws.weights[j]
	}
	ws.vals, ws.weights = vals, weights
}

// fill computes the sample's value and, for observed types, its protobuf
// form, at now (under the registry's lock).
func (m *sample) fill(now time.Time) {
	s := m.s
	if s.fam.opts.Type == GaugeHistogram {
		m.h = s.gaugeHistogram(now)
		m.v = float64(m.h.GetSampleCount())
		return
	}
	m.v = s.value(now)
	switch s.fam.opts.Type {
	case Counter:
		m.ex = s.dtoExemplar(0)
	case Histogram:
		m.h = s.histogram()
	case Summary:
		m.sm = s.summary(now)
	}
}

// Gather implements prometheus.Gatherer, with every family's exact type:
// unlike a Collector, which client_golang's registry types by the field a
// metric fills, it exposes gauge histograms as GAUGE_HISTOGRAM (Collect
// sends them as histograms). [Registry.Handler] serves it.
func (r *Registry) Gather() ([]*dto.MetricFamily, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gatherLocked(r.now()), nil
}

func (r *Registry) gatherLocked(now time.Time) []*dto.MetricFamily {
	var out []*dto.MetricFamily
	for _, f := range r.order {
		r.churnLocked(f, now)
		hide := r.hideFam[f]
		if hide != nil && hide.all {
			continue
		}
		visible := f.order
		if hide != nil {
			visible = slices.DeleteFunc(slices.Clone(f.order), func(s *series) bool { return s.matchesAny(hide.matchers) })
		}
		if len(visible) == 0 {
			continue
		}
		name, help := f.opts.Name, f.opts.Help
		mf := &dto.MetricFamily{Name: &name, Help: &help, Type: dtoType(f.opts.Type).Enum()}
		mf.Metric = writeMetrics(visible, now)
		out = append(out, mf)
	}
	return out
}

// writeMetrics renders series of one family at now, in bulk: gauges and
// counters without the per-series sample Collect sends.
func writeMetrics(ss []*series, now time.Time) []*dto.Metric {
	ms := make([]dto.Metric, len(ss))
	out := make([]*dto.Metric, len(ss))
	vals := make([]float64, len(ss))
	typ := ss[0].fam.opts.Type
	var gauges []dto.Gauge
	var counters []dto.Counter
	switch typ {
	case Gauge:
		gauges = make([]dto.Gauge, len(ss))
	case Counter:
		counters = make([]dto.Counter, len(ss))
	}
	for i, s := range ss {
		m := &ms[i]
		out[i] = m
		m.Label = s.pairs
		switch typ {
		case Gauge:
			vals[i] = s.value(now)
			gauges[i].Value = &vals[i]
			m.Gauge = &gauges[i]
		case Counter:
			vals[i] = s.value(now)
			counters[i].Value = &vals[i]
			counters[i].Exemplar = s.dtoExemplar(0)
			m.Counter = &counters[i]
		default:
			sm := &sample{s: s}
			sm.fill(now)
			_ = sm.Write(m)
		}
	}
	return out
}

func dtoType(t Type) dto.MetricType {
	switch t {
	case Counter:
		return dto.MetricType_COUNTER
	case Histogram:
		return dto.MetricType_HISTOGRAM
	case Summary:
		return dto.MetricType_SUMMARY
	case GaugeHistogram:
		return dto.MetricType_GAUGE_HISTOGRAM
	}
	return dto.MetricType_GAUGE
}

func (s *series) summary(now time.Time) *dto.Summary {
	ws := s.window(now)
	ws.sortByValue()
	count := uint64(math.Floor(s.acc + s.added + 1e-9))
	sum := s.sum
	out := &dto.Summary{SampleCount: &count, SampleSum: &sum}
	qs := make([]dto.Quantile, len(s.fam.opts.Quantiles))
	vals := make([]float64, 2*len(qs))
	for i, q := range s.fam.opts.Quantiles {
		vals[2*i], vals[2*i+1] = q, ws.quantile(q)
		qs[i].Quantile, qs[i].Value = &vals[2*i], &vals[2*i+1]
		out.Quantile = append(out.Quantile, &qs[i])
	}
	return out
}

func (s *series) gaugeHistogram(now time.Time) *dto.Histogram {
	ws := s.window(now)
	weights := make([]float64, len(s.fam.opts.Buckets)+1)
	for i, v := range ws.vals {
		weights[sort.SearchFloat64s(s.fam.opts.Buckets, v)] += ws.weights[i]
	}
	count := uint64(math.Floor(ws.total + 1e-9))
	sum := ws.sum
	return &dto.Histogram{SampleCount: &count, SampleSum: &sum, Bucket: classicBuckets(s.fam.opts.Buckets, weights, count)}
}

// nativeState holds a series' native histogram buckets (weights, floored
// when written).
type nativeState struct {
	schema   int32
	pos, neg map[int]float64
	zero     float64
}

// nativeZeroThreshold is client_golang's DefNativeHistogramZeroThreshold.
const nativeZeroThreshold = prometheus.DefNativeHistogramZeroThreshold

func newNative(f *family) *nativeState {
	return &nativeState{schema: pickSchema(f.opts.NativeBucketFactor), pos: map[int]float64{}, neg: map[int]float64{}}
}

// pickSchema is client_golang's choice of schema for a bucket factor:
// the largest resolution whose growth factor 2^(2^-schema) does not exceed
// it, within -4..8.
func pickSchema(factor float64) int32 {
	floor := math.Floor(math.Log2(math.Log2(factor)))
	switch {
	case floor <= -8:
		return 8
	case floor >= 4:
		return -4
	}
	return -int32(floor)
}

// nativeKey is the index of the bucket holding |v| > 0 at schema: bucket i
// holds (2^((i-1)·2^-schema), 2^(i·2^-schema)].
func nativeKey(v float64, schema int32) int {
	frac, exp := math.Frexp(math.Abs(v)) // |v| = frac·2^exp, frac in [0.5, 1)
	if schema > 0 {
		n := 1 << schema
		k := int(math.Ceil(math.Log2(frac*2) * float64(n)))
		if k >= n { // rounding at the top of [1, 2)
			k = n
		}
		return (exp-1)*n + k
	}
	w := 1 << -schema
	if frac == 0.5 {
		return int(floorDiv(int64(exp-1)+int64(w)-1, int64(w)))
	}
	return int(floorDiv(int64(exp-1), int64(w))) + 1
}

func (n *nativeState) observe(v, w float64, maxBuckets int) {
	switch {
	case math.Abs(v) <= nativeZeroThreshold:
		n.zero += w
		return
	case v > 0:
		n.pos[nativeKey(v, n.schema)] += w
	default:
		n.neg[nativeKey(v, n.schema)] += w
	}
	for (len(n.pos) > maxBuckets || len(n.neg) > maxBuckets) && n.schema > -4 {
		n.schema--
		n.pos, n.neg = halve(n.pos), halve(n.neg)
	}
}

// halve merges pairs of buckets: schema s-1's bucket ceil(k/2) holds
// schema s's buckets k.
func halve(m map[int]float64) map[int]float64 {
	out := make(map[int]float64, len(m)/2+1)
	for k, w := range m {
		out[int(floorDiv(int64(k)+1, 2))] += w
	}
	return out
}

// write fills h's native fields as client_golang's
// NewConstNativeHistogram does (spans and deltas; an empty span for an empty
// histogram) and returns the count: the sum of the bucket populations,
// floored cumulatively (negative, zero, positive) so that they add up.
func (n *nativeState) write(h *dto.Histogram) uint64 {
	var cum float64
	var prev uint64
	pop := func(w float64) int64 {
		cum += w
		c := uint64(math.Floor(cum + 1e-9))
		d := c - prev
		prev = c
		return int64(d)
	}
	negKeys, posKeys := sortedKeys(n.neg), sortedKeys(n.pos)
	negPops := make([]int64, len(negKeys))
	for i, k := range negKeys {
		negPops[i] = pop(n.neg[k])
	}
	zero := uint64(pop(n.zero))
	posPops := make([]int64, len(posKeys))
	for i, k := range posKeys {
		posPops[i] = pop(n.pos[k])
	}
	schema, zt := n.schema, nativeZeroThreshold
	h.Schema, h.ZeroThreshold, h.ZeroCount = &schema, &zt, &zero
	h.NegativeSpan, h.NegativeDelta = spans(negKeys, negPops)
	h.PositiveSpan, h.PositiveDelta = spans(posKeys, posPops)
	if len(h.PositiveSpan) == 0 && len(h.NegativeSpan) == 0 && zero == 0 {
		var off int32
		var l uint32
		h.PositiveSpan = []*dto.BucketSpan{{Offset: &off, Length: &l}}
	}
	return prev
}

func sortedKeys(m map[int]float64) []int {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// spans encodes sorted bucket keys and their populations as spans and
// deltas, leaving out empty buckets.
func spans(keys []int, pops []int64) ([]*dto.BucketSpan, []int64) {
	var out []*dto.BucketSpan
	var deltas []int64
	var last int
	var prevPop int64
	for i, k := range keys {
		if pops[i] == 0 {
			continue
		}
		if len(out) == 0 || k != last+1 {
			off := int32(k)
			if len(out) > 0 {
				off = int32(k - last - 1)
			}
			var l uint32
			out = append(out, &dto.BucketSpan{Offset: &off, Length: &l})
		}
		*out[len(out)-1].Length++
		deltas = append(deltas, pops[i]-prevPop)
		prevPop, last = pops[i], k
	}
	return out, deltas
}
