package mockexporter

import (
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
)

// Options configures a [Registry]. The zero value works: the real clock, the
// seed catalogue pre-declared, slog.Default for logs.
type Options struct {
	// Now is the clock every value is computed from; default time.Now.
	// Inject a fake clock to make values deterministic in tests.
	Now func() time.Time
	// Empty starts the registry without the seed catalogue (the /simulate
	// routes then answer 404 for the missing metrics).
	Empty bool
	// Logger receives a line for every state change made over HTTP and for
	// every scenario start and stop;
	// default slog.Default().
	Logger *slog.Logger
	// MaxSeries caps the number of series (default DefaultMaxSeries,
	// 100,000; never fewer than the catalogue's 26 default series).
	MaxSeries int
	// MaxBytes caps the estimated memory held by the families and series
	// (see SeriesOverheadBytes for how it is counted and [Registry.Usage]):
	// default DefaultMaxBytes (64 MiB); negative for no limit. The seed
	// catalogue always fits.
	MaxBytes int64
	// MaxExpositionBytes caps the estimated size of the /metrics text
	// exposition (an upper bound: HELP and TYPE lines, and buckets+3 lines a
	// histogram series, each with the longest value text), so that a scrape
	// stays within it: default DefaultMaxExpositionBytes (16 MiB), of which
	// RuntimeExpositionReserve is kept for the runtime collectors; negative
	// for no limit. The seed catalogue always fits.
	MaxExpositionBytes int64
	// MaxBuckets caps the buckets of a histogram family: default
	// DefaultMaxBuckets (64).
	MaxBuckets int
	// MaxLabels caps the label names of a family, so the labels of each of
	// its series: default DefaultMaxLabels (32); never fewer than the
	// catalogue's 2 unless Empty.
	MaxLabels int
	// MaxLabelValueBytes caps the length of a label value: default
	// MaxLabelValueLen (128 bytes); never less than the catalogue's longest
	// default value (14 bytes) unless Empty.
	MaxLabelValueBytes int
	// MaxBodyBytes caps control API request bodies (default 1 MiB); larger
	// bodies get 413.
	MaxBodyBytes int64
	// DisableRuntimeCollectors leaves the Go and process collectors out of
	// the Handler's /metrics.
	DisableRuntimeCollectors bool
}

// Registry holds simulated metric families and their series. It implements
// prometheus.Collector (as an unchecked collector: families can be declared
// at any time) and serves the HTTP API through [Registry.Handler]. All methods
// are safe for concurrent use.
type Registry struct {
	now       func() time.Time
	log       *slog.Logger
	opts      Options
	mu        sync.Mutex
	fams      map[string]*family
	order     []*family // sorted by name
	nseries   int
	usedBytes int64 // see Usage
	usedExpo  int64
	scenarios []*scenario // newest last
	nextScen  int
	faults    Faults
	hideFam   map[*family]*hideRule

	handlerOnce sync.Once
	handler     *handler
}

type family struct {
	opts       MetricOptions
	desc       *prometheus.Desc
	series     map[string]*series
	order      []*series
	hasDefault bool
	cost       cost       // of the family itself, without its series
	gen        *generator // generated families (DeclareFamily) only
	nativeMax  int        // native buckets a sign a series keeps; 0: none
}

type series struct {
	fam      *family
	values   []string
	pairs    []*dto.LabelPair
	cost     cost
	srcBytes int64 // sourceBytes(src), counted in Registry.usedBytes
	src      Source
	start    time.Time
	bindings []*binding
	// counters and histograms
	last    time.Time
	acc     float64 // integral of the rate (counters) or simulated observation count (histograms)
	added   float64 // explicit increments
	buckets []float64
	sum     float64
	// What only histograms, summaries, gauge histograms and series with
	// exemplars hold; nil for the others (most series of a large
	// generated family), which keeps them small.
	*seriesExtra
}

type seriesExtra struct {
	born   time.Time     // a window starts no earlier
	obs    []observation // explicit observations of the window, oldest first
	native *nativeState  // native histogram buckets, nil without
	ex     []exemplar    // exemplar slots (MetricOptions.Exemplars), nil without
}

// New returns a registry; see [Options] for the defaults.
func New(opts Options) *Registry {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxSeries <= 0 {
		opts.MaxSeries = DefaultMaxSeries
	}
	opts.MaxBytes = budgetOr(opts.MaxBytes, DefaultMaxBytes)
	opts.MaxExpositionBytes = budgetOr(opts.MaxExpositionBytes, DefaultMaxExpositionBytes)
	if opts.MaxBuckets <= 0 {
		opts.MaxBuckets = DefaultMaxBuckets
	}
	if opts.MaxLabels <= 0 {
		opts.MaxLabels = DefaultMaxLabels
	}
	if opts.MaxLabelValueBytes <= 0 {
		opts.MaxLabelValueBytes = MaxLabelValueLen
	}
	if !opts.Empty {
		// The catalogue and its seed routes always fit.
		opts.MaxSeries = max(opts.MaxSeries, len(seedRoutes))
		opts.MaxLabels = max(opts.MaxLabels, catalogueMaxLabels)
		opts.MaxLabelValueBytes = max(opts.MaxLabelValueBytes, catalogueMaxValueLen)
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 1 << 20
	}
	r := &Registry{now: opts.Now, log: opts.Logger, opts: opts}
	r.mu.Lock()
	r.resetLocked()
	r.mu.Unlock()
	return r
}

// budgetOr maps a byte budget option to its value in effect: 0 is the
// default, a negative value no limit (-1).
func budgetOr(v, def int64) int64 {
	switch {
	case v == 0:
		return def
	case v < 0:
		return -1
	}
	return v
}

func (r *Registry) resetLocked() {
	r.fams = map[string]*family{}
	r.order = nil
	r.nseries = 0
	r.usedBytes, r.usedExpo = 0, r.baseExposition()
	for _, sc := range r.scenarios {
		r.usedBytes += sc.bytes // the history outlives a reset
	}
	for _, sc := range r.scenarios {
		if sc.state == scenarioRunning {
			sc.state = scenarioStopped
			sc.stopped = r.now()
		}
	}
	r.faults = Faults{}
	r.hideFam = nil
	if !r.opts.Empty {
		for _, m := range Catalogue() {
			if err := r.declareLocked(m, true); err != nil {
				panic("mockexporter: bad catalogue: " + err.Error())
			}
		}
	}
}

// Reset returns the registry to the state New left it in: every scenario is
// stopped, faults are cleared, families declared since are removed and the
// catalogue's series are back to their defaults.
func (r *Registry) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.resetLocked()
}

// MaxFamilies is the most metric families a registry declares; Declare
// beyond it fails with ErrLimit.
const MaxFamilies = 10_000

// Declare adds a metric family. It fails with ErrDuplicateMetric if the name
// is taken, with a *LimitError (ErrLimit) beyond MaxFamilies families or
// when the family and its default series would exceed a budget of
// [Options], and with a *ValidationError for a bad name, label or bucket
// (more labels than Options.MaxLabels or buckets than Options.MaxBuckets
// included). On error nothing changes.
func (r *Registry) Declare(m MetricOptions) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.declareLocked(m, false)
}

// declareLocked validates m and adds its family (and default series). With
// force (the seed catalogue) the budgets are not checked.
func (r *Registry) declareLocked(m MetricOptions, force bool) error {
	if err := r.checkNewFamilyLocked(&m); err != nil {
		return err
	}
	f := r.newFamily(m)
	f.hasDefault = len(m.Defaults) == len(m.LabelNames)
	var vals []string
	c := f.cost
	if f.hasDefault {
		vals = make([]string, len(m.LabelNames))
		for i, ln := range m.LabelNames {
			vals[i] = m.Defaults[ln]
		}
		c = c.plus(seriesCost(f, vals))
	}
	if !force {
		if err := r.admitLocked(c); err != nil {
			return err
		}
	}
	r.insertFamilyLocked(f)
	if f.hasDefault {
		s := r.addSeriesLocked(f, vals, r.now())
		s.src = Constant(m.Initial)
	}
	return nil
}

// newFamily makes the family of checked options m.
func (r *Registry) newFamily(m MetricOptions) *family {
	f := &family{opts: m, desc: prometheus.NewDesc(m.Name, m.Help, m.LabelNames, nil), series: map[string]*series{}, cost: familyCost(&m)}
	if m.NativeBucketFactor > 1 {
		f.nativeMax = r.opts.MaxBuckets
	}
	return f
}

// insertFamilyLocked adds f (checked and admitted) and charges its own cost.
func (r *Registry) insertFamilyLocked(f *family) {
	r.fams[f.opts.Name] = f
	i := sort.Search(len(r.order), func(i int) bool { return r.order[i].opts.Name >= f.opts.Name })
	r.order = slices.Insert(r.order, i, f)
	r.chargeLocked(f.cost)
}

// checkNewFamilyLocked validates a family about to be declared (name,
// type, clashes, labels, buckets) and normalises m.
func (r *Registry) checkNewFamilyLocked(m *MetricOptions) error {
	if !validMetricName(m.Name) {
		return validationf("name", "%q is not a valid metric name", truncate(m.Name))
	}
	if _, ok := r.fams[m.Name]; ok {
		return fmt.Errorf("%w: %s", ErrDuplicateMetric, m.Name)
	}
	if len(r.fams) >= MaxFamilies {
		return &LimitError{Limit: "MaxFamilies", Max: MaxFamilies, Want: int64(len(r.fams) + 1), What: "number of metric families"}
	}
	if m.Type < Gauge || m.Type > maxType {
		return validationf("type", "unknown type %d", int(m.Type))
	}
	if !r.opts.DisableRuntimeCollectors {
		for _, p := range []string{"go_", "process_", "promhttp_"} {
			if strings.HasPrefix(m.Name, p) {
				return validationf("name", "the %s* names belong to the runtime collectors /metrics serves", p)
			}
		}
	}
	if other := r.collidingLocked(m.Name, m.Type); other != "" {
		return fmt.Errorf("%w: %s would clash in the exposition with %s", ErrDuplicateMetric, m.Name, other)
	}
	return r.normalizeMetric(m)
}

// normalizeMetric checks the labels, help, buckets and initial value of m
// and fills in their defaults; it returns m's fields cloned.
func (r *Registry) normalizeMetric(m *MetricOptions) error {
	if m.Range < Any || m.Range > Count {
		return validationf("range", "unknown range %d", int(m.Range))
	}
	if err := r.checkLabelNames(m); err != nil {
		return err
	}
	if m.Help == "" {
		m.Help = "Simulated metric " + m.Name + "."
	}
	if !utf8.ValidString(m.Help) || len(m.Help) > 1024 {
		return validationf("help", "must be valid UTF-8 of at most 1024 bytes")
	}
	if i := strings.IndexFunc(m.Help, func(c rune) bool { return isControl(c) && c != '\n' && c != '\t' }); i >= 0 {
		return validationf("help", "control character %U at byte %d (only tab and newline are allowed)", []rune(m.Help[i:])[0], i)
	}
	if err := r.checkKind(m); err != nil {
		return err
	}
	initialRange := m.Range
	if m.Type == Counter {
		initialRange = NonNegative
	}
	if err := initialRange.check(m.Initial); err != nil {
		return validationf("initial", "%s", err.(*ValidationError).Reason)
	}
	m.LabelNames = slices.Clone(m.LabelNames)
	m.Buckets = slices.Clone(m.Buckets)
	m.Defaults = cloneLabels(m.Defaults)
	return nil
}

func (r *Registry) checkLabelNames(m *MetricOptions) error {
	if len(m.LabelNames) > r.opts.MaxLabels {
		return validationf("labels", "%d label names, over MaxLabels = %d", len(m.LabelNames), r.opts.MaxLabels)
	}
	seen := map[string]bool{}
	for _, ln := range m.LabelNames {
		if !validLabelName(ln) {
			return validationf("labels", "%q is not a valid label name", truncate(ln))
		}
		if seen[ln] {
			return validationf("labels", "duplicate label name %q", ln)
		}
		if ln == "le" && m.Type.bucketed() {
			return validationf("labels", `"le" is the bucket label of a histogram`)
		}
		if ln == "quantile" && m.Type == Summary {
			return validationf("labels", `"quantile" is the quantile label of a summary`)
		}
		seen[ln] = true
	}
	for k, v := range m.Defaults {
		if !seen[k] {
			return validationf("defaults", "%q is not a label of %s", truncate(k), m.Name)
		}
		if err := checkLabelValue(k, v, r.opts.MaxLabelValueBytes); err != nil {
			return err
		}
	}
	return nil
}

func (r *Registry) checkBuckets(m *MetricOptions) error {
	if m.Buckets == nil {
		m.Buckets = prometheus.DefBuckets
	}
	if len(m.Buckets) == 0 && m.NativeBucketFactor == 0 {
		return validationf("buckets", "need at least 1 bucket (or native_bucket_factor for a native-only histogram)")
	}
	if len(m.Buckets) > r.opts.MaxBuckets {
		return validationf("buckets", "%d buckets, over MaxBuckets = %d", len(m.Buckets), r.opts.MaxBuckets)
	}
	for i, b := range m.Buckets {
		if math.IsNaN(b) || math.IsInf(b, 0) || (i > 0 && b <= m.Buckets[i-1]) {
			return validationf("buckets", "must be finite and strictly increasing")
		}
	}
	if m.ObservationsPerSecond == 0 {
		m.ObservationsPerSecond = 1
	}
	if err := finite("observations_per_second", m.ObservationsPerSecond); err != nil || m.ObservationsPerSecond < 0 || m.ObservationsPerSecond > 1e6 {
		return validationf("observations_per_second", "must be between 0 and 1e6")
	}
	return nil
}

// exposedSuffixes are the sample-name suffixes a family of each type adds in
// the text or OpenMetrics exposition.
var exposedSuffixes = map[Type][]string{
	Counter:        {"_total", "_created"},
	Histogram:      {"_bucket", "_count", "_sum", "_created"},
	Summary:        {"_count", "_sum", "_created"},
	GaugeHistogram: {"_bucket", "_count", "_sum", "_gcount", "_gsum"},
}

// collidingLocked returns the name of a declared family whose exposed sample
// names would clash with a new family (name, typ), or "".
func (r *Registry) collidingLocked(name string, typ Type) string {
	for _, suf := range exposedSuffixes[typ] {
		if _, ok := r.fams[name+suf]; ok {
			return name + suf
		}
	}
	for t, sufs := range exposedSuffixes {
		for _, suf := range sufs {
			if base, ok := strings.CutSuffix(name, suf); ok {
				if f, ok := r.fams[base]; ok && f.opts.Type == t {
					return base
				}
			}
		}
	}
	return ""
}

// Families returns the declared families, sorted by name.
func (r *Registry) Families() []MetricOptions {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]MetricOptions, len(r.order))
	for i, f := range r.order {
		out[i] = f.opts
		out[i].LabelNames = slices.Clone(f.opts.LabelNames)
		out[i].Buckets = slices.Clone(f.opts.Buckets)
		out[i].Defaults = cloneLabels(f.opts.Defaults)
	}
	return out
}

// Set attaches src to the series (creating it): for a gauge src gives the
// value, for a counter the rate per second it rises by, for a histogram the
// value of each simulated observation. The source's bounds must lie in the
// family's range. Labels left out take the family's defaults.
func (r *Registry) Set(metric string, labels Labels, src Source) error {
	if src == nil {
		return validationf("source", "missing")
	}
	if v, ok := src.(Validator); ok {
		if err := v.Validate(); err != nil {
			return err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	f, vals, err := r.resolveLocked(metric, labels)
	if err != nil {
		return err
	}
	if err := f.checkSource(src); err != nil {
		return err
	}
	// The source's parameters count towards MaxBytes (a steps source
	// holds up to 1000 values): check the series and its new source
	// together, before any change.
	srcBytes := sourceBytes(src)
	s, exists := f.series[seriesKey(vals)]
	c := cost{bytes: srcBytes}
	if exists {
		c.bytes -= s.srcBytes
	} else {
		c = c.plus(seriesCost(f, vals))
	}
	if err := r.admitLocked(c); err != nil {
		return err
	}
	now := r.now()
	if !exists {
		if f.gen != nil {
			return fmt.Errorf("%w: %s%s (a generated family's series come from its templates)", ErrUnknownSeries, metric, formatLabels(f.opts.LabelNames, vals))
		}
		s = r.addSeriesLocked(f, vals, now)
	}
	s.integrate(now)
	r.setSourceLocked(s, src, srcBytes, now)
	return nil
}

// setSourceLocked gives s its own source src (srcBytes its sourceBytes)
// from now, and accounts for it.
func (r *Registry) setSourceLocked(s *series, src Source, srcBytes int64, now time.Time) {
	r.usedBytes += srcBytes - s.srcBytes
	s.src, s.start, s.srcBytes = src, now, srcBytes
}

// SetValue sets a gauge to v. For a counter it raises the counter to v
// (lowering it is a *ValidationError: counters only rise, use ResetSeries).
// Histograms answer ErrWrongType.
func (r *Registry) SetValue(metric string, labels Labels, v float64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	f, vals, err := r.resolveLocked(metric, labels)
	if err != nil {
		return err
	}
	now := r.now()
	switch f.opts.Type {
	case Gauge:
		if err := f.opts.Range.check(v); err != nil {
			return err
		}
		s, err := r.seriesLocked(f, vals, now, true)
		if err != nil {
			return err
		}
		r.setSourceLocked(s, Constant(v), 0, now)
	case Counter:
		if err := NonNegative.check(v); err != nil {
			return err
		}
		s, err := r.seriesLocked(f, vals, now, true)
		if err != nil {
			return err
		}
		s.integrate(now)
		cur := s.acc + s.added
		if v < cur {
			return validationf("value", "counter %s is at %v and only rises; reset it first", metric, cur)
		}
		s.added += v - cur
	default:
		return fmt.Errorf("%w: SetValue on histogram %s", ErrWrongType, metric)
	}
	return nil
}

// Add adds delta to a counter (delta ≥ 0) or to a gauge's current value (the
// gauge then holds the sum as a constant).
func (r *Registry) Add(metric string, labels Labels, delta float64) error {
	if err := finite("value", delta); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	f, vals, err := r.resolveLocked(metric, labels)
	if err != nil {
		return err
	}
	now := r.now()
	switch f.opts.Type {
	case Counter:
		if delta < 0 {
			return validationf("value", "counters only rise, got increment %v", delta)
		}
		if cur, ok := f.series[seriesKey(vals)]; ok {
			// The counter's value is the simulated integral plus what was
			// added: both count towards overflow.
			cur.integrate(now)
			if math.IsInf(cur.acc+cur.added+delta, 0) || math.IsInf(cur.added+delta, 0) {
				return validationf("value", "increment %v overflows the counter", delta)
			}
		}
		s, err := r.seriesLocked(f, vals, now, true)
		if err != nil {
			return err
		}
		s.added += delta
		if delta > 0 {
			s.recordExemplar(delta, now)
		}
	case Gauge:
		var cur float64
		if s, err := r.seriesLocked(f, vals, now, false); err == nil {
			cur = s.gaugeValue(now)
		}
		v := cur + delta
		if err := f.opts.Range.check(v); err != nil {
			return err
		}
		s, err := r.seriesLocked(f, vals, now, true)
		if err != nil {
			return err
		}
		r.setSourceLocked(s, Constant(v), 0, now)
	default:
		return fmt.Errorf("%w: Add on histogram %s", ErrWrongType, metric)
	}
	return nil
}

// Observe records explicit observations in a histogram.
func (r *Registry) Observe(metric string, labels Labels, values ...float64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	f, vals, err := r.resolveLocked(metric, labels)
	if err != nil {
		return err
	}
	if !f.opts.Type.observed() {
		return fmt.Errorf("%w: Observe on %s %s", ErrWrongType, f.opts.Type, metric)
	}
	for _, v := range values {
		if err := f.opts.Range.check(v); err != nil {
			return err
		}
	}
	now := r.now()
	s, err := r.seriesLocked(f, vals, now, true)
	if err != nil {
		return err
	}
	for _, v := range values {
		s.observeExplicit(v, now)
	}
	return nil
}

// Delete removes a series; it disappears from the next scrape.
func (r *Registry) Delete(metric string, labels Labels) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	f, vals, err := r.resolveLocked(metric, labels)
	if err != nil {
		return err
	}
	key := seriesKey(vals)
	s, ok := f.series[key]
	if !ok {
		return fmt.Errorf("%w: %s%s", ErrUnknownSeries, metric, formatLabels(f.opts.LabelNames, vals))
	}
	if f.gen != nil {
		return fmt.Errorf("%w: the series of generated family %s come from its templates and cannot be deleted one by one", ErrWrongType, metric)
	}
	delete(f.series, key)
	f.order = slices.DeleteFunc(f.order, func(x *series) bool { return x == s })
	r.nseries--
	r.usedBytes -= s.cost.bytes + s.srcBytes
	r.usedExpo -= s.cost.expo
	return nil
}

// ResetSeries sets a counter or histogram back to zero (the only way a
// counter goes down); its source keeps running from now.
func (r *Registry) ResetSeries(metric string, labels Labels) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	f, vals, err := r.resolveLocked(metric, labels)
	if err != nil {
		return err
	}
	if f.opts.Type == Gauge {
		return fmt.Errorf("%w: reset applies to counters and histograms, %s is a gauge", ErrWrongType, metric)
	}
	now := r.now()
	s, err := r.seriesLocked(f, vals, now, false)
	if err != nil {
		return err
	}
	s.acc, s.added, s.sum, s.last = 0, 0, 0, now
	clear(s.buckets)
	if s.seriesExtra != nil {
		s.obs, s.born = nil, now
		clear(s.ex)
		if s.native != nil {
			s.native = newNative(f)
		}
	}
	return nil
}

// SeriesInfo describes one series at a moment.
type SeriesInfo struct {
	Metric string     `json:"metric"`
	Type   Type       `json:"type"`
	Labels Labels     `json:"labels"`
	Value  float64    `json:"value"` // gauge value, counter total, histogram observation count
	Source SourceSpec `json:"source"`
	// Scenario is the id of the scenario currently driving the series.
	Scenario string `json:"scenario,omitempty"`
}

// Series lists the series of one family (or of all when metric is ""),
// with their values at the registry's now. It advances counters exactly as a
// scrape does.
func (r *Registry) Series(metric string) ([]SeriesInfo, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fams := r.order
	if metric != "" {
		f, ok := r.fams[metric]
		if !ok {
			return nil, fmt.Errorf("%w: %q", ErrUnknownMetric, truncate(metric))
		}
		fams = []*family{f}
	}
	now := r.now()
	out := []SeriesInfo{}
	for _, f := range fams {
		r.churnLocked(f, now)
		for _, s := range f.order {
			out = append(out, s.info(now))
		}
	}
	return out, nil
}

// Value returns a series' value at the registry's now (as [Registry.Series]).
// Labels left out take the family's defaults.
func (r *Registry) Value(metric string, labels Labels) (float64, error) {
	si, err := r.Get(metric, labels)
	return si.Value, err
}

// Get describes one series at the registry's now. Labels left out take the
// family's defaults.
func (r *Registry) Get(metric string, labels Labels) (SeriesInfo, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f, vals, err := r.resolveLocked(metric, labels)
	if err != nil {
		return SeriesInfo{}, err
	}
	now := r.now()
	s, err := r.seriesLocked(f, vals, now, false)
	if err != nil {
		return SeriesInfo{}, err
	}
	return s.info(now), nil
}

func (s *series) info(now time.Time) SeriesInfo {
	si := SeriesInfo{Metric: s.fam.opts.Name, Type: s.fam.opts.Type, Labels: Labels{}, Value: s.value(now)}
	for i, ln := range s.fam.opts.LabelNames {
		si.Labels[ln] = s.values[i]
	}
	src, _, b := s.effective(now)
	si.Source = SpecOf(src)
	if b != nil {
		si.Scenario = b.sc.id
	}
	return si
}

// Describe sends nothing: the registry is an unchecked collector, because
// families can be declared while it is registered.
func (r *Registry) Describe(chan<- *prometheus.Desc) {}

// Collect computes every visible series from its source at one reading of
// the clock and sends it.
func (r *Registry) Collect(ch chan<- prometheus.Metric) {
	r.mu.Lock()
	now := r.now()
	for _, f := range r.order {
		r.churnLocked(f, now)
	}
	samples := make([]sample, r.nseries)
	n := 0
	for _, f := range r.order {
		hide := r.hideFam[f]
		if hide != nil && hide.all {
			continue
		}
		for _, s := range f.order {
			if hide != nil && s.matchesAny(hide.matchers) {
				continue
			}
			sm := &samples[n]
			n++
			sm.s = s
			sm.fill(now)
		}
	}
	r.mu.Unlock()
	for i := range samples[:n] {
		ch <- &samples[i]
	}
}

// sample is one series' value at one Collect; it is the prometheus.Metric
// the registry sends. Label pairs are shared with the series (immutable).
type sample struct {
	s  *series
	v  float64
	g  dto.Gauge
	h  *dto.Histogram
	sm *dto.Summary
	ex *dto.Exemplar // a counter's
}

func (m *sample) Desc() *prometheus.Desc { return m.s.fam.desc }

func (m *sample) Write(pb *dto.Metric) error {
	pb.Label = m.s.pairs
	switch m.s.fam.opts.Type {
	case Gauge:
		m.g.Value = &m.v
		pb.Gauge = &m.g
	case Counter:
		pb.Counter = &dto.Counter{Value: &m.v, Exemplar: m.ex}
	case Histogram, GaugeHistogram:
		pb.Histogram = m.h
	case Summary:
		pb.Summary = m.sm
	}
	return nil
}

func (r *Registry) resolveLocked(metric string, labels Labels) (*family, []string, error) {
	f, ok := r.fams[metric]
	if !ok {
		return nil, nil, fmt.Errorf("%w: %q", ErrUnknownMetric, truncate(metric))
	}
	r.churnLocked(f, r.now())
	vals, err := f.resolve(labels, r.opts.MaxLabelValueBytes)
	return f, vals, err
}

func (f *family) resolve(labels Labels, maxValueLen int) ([]string, error) {
	for k := range labels {
		if !slices.Contains(f.opts.LabelNames, k) {
			return nil, validationf("labels", "%q is not a label of %s (labels: %s)", truncate(k), f.opts.Name, strings.Join(f.opts.LabelNames, ", "))
		}
	}
	vals := make([]string, len(f.opts.LabelNames))
	for i, ln := range f.opts.LabelNames {
		v, ok := labels[ln]
		if !ok {
			if v, ok = f.opts.Defaults[ln]; !ok {
				return nil, validationf("labels."+ln, "required by %s", f.opts.Name)
			}
		}
		if err := checkLabelValue(ln, v, maxValueLen); err != nil {
			return nil, err
		}
		vals[i] = v
	}
	return vals, nil
}

func (f *family) checkSource(src Source) error {
	lo, hi := src.Bounds()
	if math.IsNaN(lo) || math.IsNaN(hi) || math.IsInf(lo, 0) || math.IsInf(hi, 0) {
		return validationf("source", "bounds must be finite")
	}
	rng := f.opts.Range
	if f.opts.Type == Counter {
		if lo < 0 {
			return validationf("source", "a counter's rate must not be negative (source reaches %v)", lo)
		}
		if rng == Percent || rng == Status || rng == Count {
			rng = NonNegative
		}
	}
	rlo, rhi := rng.limits()
	if lo < rlo || hi > rhi {
		return validationf("source", "values %v..%v leave the %s range of %s", lo, hi, rng, f.opts.Name)
	}
	return nil
}

// seriesLocked finds (or, with create, makes) a series.
func (r *Registry) seriesLocked(f *family, vals []string, now time.Time, create bool) (*series, error) {
	if s, ok := f.series[seriesKey(vals)]; ok {
		return s, nil
	}
	if !create || f.gen != nil {
		// A generated family's series come from its templates only.
		return nil, fmt.Errorf("%w: %s%s", ErrUnknownSeries, f.opts.Name, formatLabels(f.opts.LabelNames, vals))
	}
	if err := r.admitLocked(seriesCost(f, vals)); err != nil {
		return nil, err
	}
	return r.addSeriesLocked(f, vals, now), nil
}

// addSeriesLocked adds a series without checking the budgets (the caller
// has).
func (r *Registry) addSeriesLocked(f *family, vals []string, now time.Time) *series {
	s := &series{fam: f, values: vals, src: Constant(0), start: now, last: now, cost: seriesCost(f, vals)}
	s.pairs = make([]*dto.LabelPair, len(vals))
	for i, ln := range f.opts.LabelNames {
		s.pairs[i] = &dto.LabelPair{Name: proto.String(ln), Value: proto.String(vals[i])}
	}
	sort.Slice(s.pairs, func(i, j int) bool { return s.pairs[i].GetName() < s.pairs[j].GetName() })
	s.initKind(now)
	f.series[seriesKey(vals)] = s
	f.order = append(f.order, s)
	r.nseries++
	r.chargeLocked(s.cost)
	return s
}

// effective returns the source driving the series at now, the elapsed time
// it sees, and the scenario binding it comes from (nil: the series' own).
func (s *series) effective(now time.Time) (Source, time.Duration, *binding) {
	for i := len(s.bindings) - 1; i >= 0; i-- {
		if src, el, ok := s.bindings[i].at(now); ok {
			return src, el, s.bindings[i]
		}
	}
	return s.src, now.Sub(s.start), nil
}

func (s *series) gaugeValue(now time.Time) float64 {
	src, el, _ := s.effective(now)
	return s.fam.opts.Range.shape(src.Value(now, el))
}

func (s *series) value(now time.Time) float64 {
	switch s.fam.opts.Type {
	case Gauge:
		return s.gaugeValue(now)
	case GaugeHistogram:
		return math.Floor(s.window(now).total + 1e-9)
	case Counter:
		s.integrate(now)
		// Capped: a simulated integral near the float64 limit plus an
		// explicit increment must not read as +Inf (unencodable in JSON).
		return capFinite(s.acc + s.added)
	default:
		s.integrate(now)
		return math.Floor(capFinite(s.acc + s.added))
	}
}

// integrationStep is the width of the midpoint rule used to integrate
// counter rates and histogram observations between two reads.
const integrationStep = 100 * time.Millisecond

// integrate advances a counter's or histogram's simulated total to now.
// The clock going backwards changes nothing: counters never fall.
func (s *series) integrate(now time.Time) {
	if s.fam.opts.Type == Gauge || s.fam.opts.Type == GaugeHistogram {
		return
	}
	if !now.After(s.last) {
		return
	}
	dt := now.Sub(s.last)
	n := int64((dt + integrationStep - 1) / integrationStep)
	n = min(max(n, 1), 10_000)
	h := dt / time.Duration(n)
	// Weight of one step in seconds; the counter sum is scaled once, which
	// keeps constant rates exact.
	hs := dt.Seconds() / float64(n)
	var sum float64
	for i := int64(0); i < n; i++ {
		t := s.last.Add(h*time.Duration(i) + h/2)
		src, el, _ := s.effective(t)
		v := src.Value(t, el)
		if math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		if s.fam.opts.Type == Counter {
			sum += math.Max(v, 0)
		} else if s.fam.opts.Type == Summary {
			w := s.fam.opts.ObservationsPerSecond * hs
			s.integrateSummary(s.fam.opts.Range.shape(v), w)
		} else {
			w := s.fam.opts.ObservationsPerSecond * hs
			sv := s.fam.opts.Range.shape(v)
			s.observe(sv, w)
			s.acc += w
			if w > 0 {
				s.recordExemplar(sv, t)
			}
		}
	}
	if s.fam.opts.Type == Counter {
		inc := sum * dt.Seconds() / float64(n)
		s.acc = capFinite(s.acc + inc)
		if inc > 0 {
			s.recordExemplar(inc, now)
		}
	}
	s.last = now
}

func (s *series) observe(v, weight float64) {
	if s.buckets != nil {
		s.buckets[bucketIndex(s.fam.opts.Buckets, v)] += weight
	}
	if s.seriesExtra != nil && s.native != nil {
		s.native.observe(v, weight, s.fam.nativeMax)
	}
	s.sum = capFinite(s.sum + v*weight)
}

// capFinite keeps absurd rates from overflowing a total to +Inf, which JSON
// cannot carry.
func capFinite(v float64) float64 {
	return math.Max(math.Min(v, math.MaxFloat64), -math.MaxFloat64)
}

func (s *series) histogram() *dto.Histogram {
	count := uint64(math.Floor(s.acc + s.added + 1e-9))
	h := &dto.Histogram{}
	if s.seriesExtra != nil && s.native != nil {
		// The native buckets' populations must add up to the count.
		count = s.native.write(h)
	}
	h.Bucket = classicBuckets(s.fam.opts.Buckets, s.buckets, count)
	h.SampleCount = &count
	h.SampleSum = proto.Float64(s.sum)
	s.attachExemplars(h)
	return h
}

// classicBuckets writes cumulative buckets from per-bucket weights.
// Explicit observations are whole; simulated ones are spread over buckets
// as fractions, so cumulative counts are floored (and kept within count).
func classicBuckets(bounds, weights []float64, count uint64) []*dto.Bucket {
	out := make([]*dto.Bucket, len(bounds))
	bs := make([]dto.Bucket, len(bounds))
	cs := make([]uint64, len(bounds))
	ubs := slices.Clone(bounds)
	var cum float64
	for i := range bounds {
		cum += weights[i]
		cs[i] = min(uint64(math.Floor(cum+1e-9)), count)
		bs[i].CumulativeCount = &cs[i]
		bs[i].UpperBound = &ubs[i]
		out[i] = &bs[i]
	}
	return out
}

func (s *series) matchesAny(ms []Labels) bool {
	for _, m := range ms {
		ok := true
		for i, ln := range s.fam.opts.LabelNames {
			if v, has := m[ln]; has && v != s.values[i] {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// bucketIndex is the classic bucket holding v: the first bound ≥ v, or
// the +Inf bucket.
func bucketIndex(bounds []float64, v float64) int { return sort.SearchFloat64s(bounds, v) }

func seriesKey(vals []string) string { return strings.Join(vals, "\xff") }

func formatLabels(names, vals []string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%q", n, truncate(vals[i]))
	}
	b.WriteByte('}')
	return b.String()
}

func cloneLabels(l Labels) Labels {
	if l == nil {
		return nil
	}
	out := make(Labels, len(l))
	for k, v := range l {
		out[k] = v
	}
	return out
}

// truncate shortens user input quoted in error messages.
func truncate(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return strings.ToValidUTF8(s[:max], "") + "…"
}
