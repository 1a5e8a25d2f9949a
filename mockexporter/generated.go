package mockexporter

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// LabelTemplate is one label of a [FamilyTemplate]: a fixed value
// ("job=api") or a numbered range ("pod=pod-{0..999}", values pod-0 to
// pod-999; "shard={1..8}-x", values 1-x to 8-x). Parse it with
// [ParseLabelTemplate].
type LabelTemplate struct {
	Name string
	// Prefix and Suffix surround the number of a range; a fixed value is
	// its Prefix alone.
	Prefix, Suffix string
	// From and To bound the range, inclusive; Ranged is false for a fixed
	// value.
	From, To int64
	Ranged   bool
}

// MaxTemplateRange is the most values one label template's range may
// have.
const MaxTemplateRange = 10_000_000

// ParseLabelTemplate reads "name=value" or "name=prefix{from..to}suffix"
// (0 ≤ from ≤ to, at most MaxTemplateRange values, one range at most).
func ParseLabelTemplate(s string) (LabelTemplate, error) {
	name, val, ok := strings.Cut(s, "=")
	if !ok || !validLabelName(name) {
		return LabelTemplate{}, validationf("labels", "template %q: want name=value or name=prefix{from..to}suffix with a valid label name", truncate(s))
	}
	t := LabelTemplate{Name: name, Prefix: val}
	open := strings.IndexByte(val, '{')
	if open < 0 {
		if strings.ContainsAny(val, "}") {
			return LabelTemplate{}, validationf("labels."+name, "template %q: unmatched }", truncate(s))
		}
		return t, nil
	}
	end := strings.IndexByte(val[open:], '}')
	if end < 0 {
		return LabelTemplate{}, validationf("labels."+name, "template %q: unmatched {", truncate(s))
	}
	end += open
	lo, hi, ok := strings.Cut(val[open+1:end], "..")
	from, err1 := strconv.ParseInt(lo, 10, 64)
	to, err2 := strconv.ParseInt(hi, 10, 64)
	if !ok || err1 != nil || err2 != nil || from < 0 || to < from || to-from >= MaxTemplateRange || to > 1<<50 {
		return LabelTemplate{}, validationf("labels."+name, "template %q: want {from..to} with 0 ≤ from ≤ to ≤ 2^50 and at most %d values", truncate(s), MaxTemplateRange)
	}
	t.Prefix, t.Suffix, t.From, t.To, t.Ranged = val[:open], val[end+1:], from, to, true
	if strings.ContainsAny(t.Prefix+t.Suffix, "{}") {
		return LabelTemplate{}, validationf("labels."+name, "template %q: at most one {from..to} range", truncate(s))
	}
	return t, nil
}

// String writes the template back in the form ParseLabelTemplate reads.
func (t LabelTemplate) String() string {
	if !t.Ranged {
		return t.Name + "=" + t.Prefix
	}
	return fmt.Sprintf("%s=%s{%d..%d}%s", t.Name, t.Prefix, t.From, t.To, t.Suffix)
}

// Count is the number of values: 1 for a fixed value.
func (t LabelTemplate) Count() int64 {
	if !t.Ranged {
		return 1
	}
	return t.To - t.From + 1
}

// value is the label value for index idx (any idx ≥ 0: churn goes past To).
func (t LabelTemplate) value(idx int64) string {
	if !t.Ranged {
		return t.Prefix
	}
	return t.Prefix + strconv.FormatInt(t.From+idx, 10) + t.Suffix
}

// Churn replaces a share of a generated family's series every interval: the
// replaced series disappear and as many new ones, with new label values,
// take their place, so the number of series stays the same.
type Churn struct {
	// Share of the series replaced every Interval, 0 to 1 (0.1: 10 %).
	Share float64 `json:"share" yaml:"share"`
	// Interval is at least 1s.
	Interval Duration `json:"interval" yaml:"interval"`
	// Label is the label whose value changes, a ranged one; default the
	// first ranged label.
	Label string `json:"label,omitempty" yaml:"label,omitempty"`
}

// FamilyTemplate declares a family whose series are generated from label
// templates, for load and cardinality tests (as prometheus-community's
// avalanche does), with [Registry.DeclareFamily] or POST /api/v1/families.
//
// Series: with several ranged labels, one series per combination (the
// cartesian product, the last label varying fastest); with Zip, series i
// takes value i of every ranged label (they must have the same count).
// Fixed labels are on every series.
//
// Churn: the series are slots 0..N-1. Every Churn.Interval (counted from the
// Unix epoch, so two registries agree), round(Share·N) consecutive slots
// (cyclically, starting at an offset derived from Seed) get a new
// generation: slot i at generation g has the churn label's index
// idx + g·count, e.g. pod-{0..999} slot 5 at generation 3 is pod-3005. The
// label sets at an instant are a function of the template, Seed and the
// clock only. A replaced series is new: counters and histograms start from
// zero.
//
// Values: each series has its own source, Source (or Src) with the seed of
// every noise and random walk in it mixed with Seed, the slot and the
// generation; without a source a random walk within the family's range
// (0 to 100 for unbounded ranges). For a counter the source is the rate per
// second, for a histogram the value of each observation.
type FamilyTemplate struct {
	Name string `json:"name"`
	Help string `json:"help,omitempty"`
	Type Type   `json:"type"`
	// Labels are label templates, e.g. "pod=pod-{0..999}", "job=api".
	Labels []string `json:"labels"`
	// Zip pairs the ranged labels instead of combining them.
	Zip   bool   `json:"zip,omitempty"`
	Range Range  `json:"range"`
	Seed  int64  `json:"seed,omitempty"`
	Churn *Churn `json:"churn,omitempty"`
	// Source is the template of each series' source.
	Source *SourceSpec `json:"source,omitempty"`
	// Src is the same from Go (Source wins when both are set).
	Src                   Source    `json:"-"`
	Buckets               []float64 `json:"buckets,omitempty"`
	ObservationsPerSecond float64   `json:"observations_per_second,omitempty"`
}

// generator holds what a generated family needs to churn.
type generator struct {
	def      FamilyTemplate
	labels   []LabelTemplate // in LabelNames order
	radix    []int64         // product mode: stride of each label's index
	n        int64           // slots
	churnIdx int             // index of the churn label, -1 without churn
	m        int64           // slots replaced per interval
	off      int64           // seed-derived start of the rotation
	interval time.Duration
	epoch    int64 // the interval the slots reflect
	src      Source
	srcBytes int64
	per      cost     // charged per series: the longest label values, the source
	names    []string // label names, shared by every series' pairs
}

// DeclareFamily declares a family of generated series (see
// [FamilyTemplate]). The whole family, every series with its source and its
// longest possible label values (churn included), is checked against the
// budgets first: a *LimitError (413 over HTTP) and nothing changes when it
// does not fit. It fails like [Registry.Declare] otherwise.
func (r *Registry) DeclareFamily(ft FamilyTemplate) error {
	g, m, err := r.newGenerator(ft)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.declareGeneratedLocked(g, m)
}

func (r *Registry) newGenerator(ft FamilyTemplate) (*generator, MetricOptions, error) {
	if len(ft.Labels) > r.opts.MaxLabels {
		return nil, MetricOptions{}, validationf("labels", "%d labels, over MaxLabels = %d", len(ft.Labels), r.opts.MaxLabels)
	}
	g := &generator{def: ft, churnIdx: -1}
	m := MetricOptions{Name: ft.Name, Help: ft.Help, Type: ft.Type, Range: ft.Range, Buckets: ft.Buckets, ObservationsPerSecond: ft.ObservationsPerSecond}
	for _, s := range ft.Labels {
		t, err := ParseLabelTemplate(s)
		if err != nil {
			return nil, m, err
		}
		g.labels = append(g.labels, t)
		m.LabelNames = append(m.LabelNames, t.Name)
	}
	g.names = m.LabelNames
	if err := g.size(r.opts.MaxSeries); err != nil {
		return nil, m, err
	}
	if err := g.setChurn(ft.Churn); err != nil {
		return nil, m, err
	}
	for _, t := range g.labels {
		if err := checkLabelValue(t.Name, g.longest(t), r.opts.MaxLabelValueBytes); err != nil {
			return nil, m, err
		}
	}
	return g, m, nil
}

// size computes the number of slots and the strides.
func (g *generator) size(maxSeries int) error {
	g.n = 1
	g.radix = make([]int64, len(g.labels))
	for i := len(g.labels) - 1; i >= 0; i-- {
		c := g.labels[i].Count()
		g.radix[i] = g.n
		if g.def.Zip {
			if c > 1 && g.n > 1 && c != g.n {
				return validationf("labels", "zip needs ranged labels of one count: %s has %d values, another %d", g.labels[i].Name, c, g.n)
			}
			g.n = max(g.n, c)
			continue
		}
		if g.n > int64(maxSeries)/c {
			return &LimitError{Limit: "MaxSeries", Max: int64(maxSeries), Want: int64(maxSeries) + 1, What: "number of series (the family's template alone)"}
		}
		g.n *= c
	}
	return nil
}

func (g *generator) setChurn(c *Churn) error {
	if c == nil || c.Share == 0 {
		return nil
	}
	if math.IsNaN(c.Share) || c.Share < 0 || c.Share > 1 {
		return validationf("churn.share", "must be between 0 and 1, got %v", c.Share)
	}
	if time.Duration(c.Interval) < time.Second {
		return validationf("churn.interval", "must be at least 1s")
	}
	for i, t := range g.labels {
		if t.Ranged && (c.Label == "" || c.Label == t.Name) {
			g.churnIdx = i
			break
		}
	}
	if g.churnIdx < 0 {
		return validationf("churn.label", "churn needs a ranged label (%q is not one)", c.Label)
	}
	g.interval = time.Duration(c.Interval)
	g.m = int64(math.Round(c.Share * float64(g.n)))
	g.off = int64(mix64(uint64(g.def.Seed), 0x63687572) % uint64(g.n))
	return nil
}

// longest is the longest value a label takes: with churn, its index can
// reach 19 digits.
func (g *generator) longest(t LabelTemplate) string {
	if !t.Ranged {
		return t.Prefix
	}
	digits := len(strconv.FormatInt(t.To, 10))
	if g.churnIdx >= 0 && g.labels[g.churnIdx].Name == t.Name {
		digits = 19
	}
	return t.Prefix + strings.Repeat("9", digits) + t.Suffix
}

// declareGeneratedLocked validates the family and its source, checks the
// budgets for the whole family and creates every series.
func (r *Registry) declareGeneratedLocked(g *generator, m MetricOptions) error {
	if err := r.checkNewFamilyLocked(&m); err != nil {
		return err
	}
	f := r.newFamily(m)
	f.gen = g
	src, err := g.templateSource(f)
	if err != nil {
		return err
	}
	g.src, g.srcBytes = src, sourceBytes(src)
	bound := make([]string, len(g.labels))
	for i, t := range g.labels {
		bound[i] = g.longest(t)
	}
	per := seriesCost(f, bound)
	per.bytes += g.srcBytes
	g.per = per
	total := f.cost.plus(cost{series: int(g.n), bytes: per.bytes * g.n, expo: per.expo * g.n})
	if err := r.admitLocked(total); err != nil {
		return err
	}
	r.insertFamilyLocked(f)
	now := r.now()
	g.epoch = g.epochAt(now)
	f.series = make(map[string]*series, g.n)
	f.order = make([]*series, g.n)
	for i := range g.n {
		f.order[i] = r.newSlotLocked(f, i, g.generation(i, g.epoch), now)
	}
	return nil
}

func (g *generator) templateSource(f *family) (Source, error) {
	var src Source
	switch {
	case g.def.Source != nil:
		s, err := g.def.Source.Source()
		if err != nil {
			return nil, err
		}
		src = s
	case g.def.Src != nil:
		src = g.def.Src
		if v, ok := src.(Validator); ok {
			if err := v.Validate(); err != nil {
				return nil, err
			}
		}
	default:
		src = defaultGeneratedSource(f.opts)
	}
	if err := f.checkSource(src); err != nil {
		return nil, err
	}
	return src, nil
}

func defaultGeneratedSource(m MetricOptions) Source {
	lo, hi := 0.0, 100.0
	if m.Range == Status {
		hi = 1
	}
	if m.Type.bucketed() && len(m.Buckets) > 0 {
		hi = m.Buckets[len(m.Buckets)-1]
		if hi <= 0 || m.Range != Any {
			lo, hi = 0, math.Max(hi, 1)
		} else {
			lo = m.Buckets[0]
		}
	}
	return RandomWalk{Base: (lo + hi) / 2, Step: (hi - lo) / 100, Min: lo, Max: hi}
}

// epochAt is the churn interval holding now (0 without churn; never
// negative).
func (g *generator) epochAt(now time.Time) int64 {
	if g.churnIdx < 0 || g.m == 0 {
		return 0
	}
	return max(floorDiv(now.UnixNano(), int64(g.interval)), 0)
}

// generation of slot i at epoch k: how many of the positions
// [off, off+k·m) are ≡ i (mod n).
func (g *generator) generation(i, k int64) int64 {
	if g.churnIdx < 0 {
		return 0
	}
	return floorDiv(g.off+k*g.m-1-i, g.n) - floorDiv(g.off-1-i, g.n)
}

// values are the label values of slot i at generation gen.
func (g *generator) values(i, gen int64) []string {
	vals := make([]string, len(g.labels))
	for j, t := range g.labels {
		idx := int64(0)
		if t.Ranged {
			if g.def.Zip {
				idx = i
			} else {
				idx = (i / g.radix[j]) % t.Count()
			}
		}
		if j == g.churnIdx {
			idx += gen * t.Count()
		}
		vals[j] = t.value(idx)
	}
	return vals
}

// newSlotLocked creates the series of slot i at generation gen, charged
// g.per (the budgets were checked for the whole family).
func (r *Registry) newSlotLocked(f *family, i, gen int64, now time.Time) *series {
	g := f.gen
	vals := g.values(i, gen)
	s := &series{fam: f, values: vals, start: now, last: now, cost: g.per}
	s.cost.bytes -= g.srcBytes
	s.src, s.srcBytes = seedSource(g.src, mix64(mix64(uint64(g.def.Seed), uint64(i)), uint64(gen))), g.srcBytes
	arr := make([]dto.LabelPair, len(vals))
	s.pairs = make([]*dto.LabelPair, len(vals))
	for j := range vals {
		arr[j].Name, arr[j].Value = &g.names[j], &vals[j]
		s.pairs[j] = &arr[j]
	}
	sort.Slice(s.pairs, func(a, b int) bool { return *s.pairs[a].Name < *s.pairs[b].Name })
	s.initKind(now)
	f.series[seriesKey(vals)] = s
	r.nseries++
	r.usedBytes += s.cost.bytes + s.srcBytes
	r.usedExpo += s.cost.expo
	return s
}

// churnLocked brings a generated family's slots to the churn interval of
// now: the slots whose generation changed are replaced by new series.
func (r *Registry) churnLocked(f *family, now time.Time) {
	g := f.gen
	if g == nil || g.churnIdx < 0 || g.m == 0 {
		return
	}
	k := g.epochAt(now)
	if k == g.epoch {
		return
	}
	lo, hi := min(k, g.epoch)*g.m, max(k, g.epoch)*g.m
	if hi-lo > g.n {
		hi = lo + g.n
	}
	g.epoch = k
	for p := lo; p < hi; p++ {
		i := mod(g.off+p, g.n)
		old := f.order[i]
		delete(f.series, seriesKey(old.values))
		r.nseries--
		r.usedBytes -= old.cost.bytes + old.srcBytes
		r.usedExpo -= old.cost.expo
		f.order[i] = r.newSlotLocked(f, i, g.generation(i, k), now)
	}
}

// seedSource returns src with the seed of every noise and random walk in it
// mixed with seed.
func seedSource(src Source, seed uint64) Source {
	switch s := src.(type) {
	case Noise:
		s.Seed ^= int64(seed)
		return s
	case RandomWalk:
		s.Seed ^= int64(seed)
		return s
	case Sum:
		out := make(Sum, len(s))
		for i, p := range s {
			out[i] = seedSource(p, mix64(seed, uint64(i+1)))
		}
		return out
	}
	return src
}

// mix64 hashes two words (splitmix64 finaliser).
func mix64(a, b uint64) uint64 {
	x := a ^ (b * 0x9e3779b97f4a7c15)
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// GeneratedFamilies returns the templates of the generated families, sorted
// by name.
func (r *Registry) GeneratedFamilies() []FamilyTemplate {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []FamilyTemplate
	for _, f := range r.order {
		if f.gen != nil {
			d := f.gen.def
			d.Labels = slices.Clone(d.Labels)
			d.Buckets = slices.Clone(f.opts.Buckets)
			d.Help = f.opts.Help
			out = append(out, d)
		}
	}
	return out
}

// familySeries is the number of series of a family (0 if unknown).
func (r *Registry) familySeries(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if f, ok := r.fams[name]; ok {
		return len(f.order)
	}
	return 0
}
