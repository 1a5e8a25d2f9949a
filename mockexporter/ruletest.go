package mockexporter

import (
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// InputSeries is one entry of the input_series of a `promtool test rules`
// file: a series and its values in promtool's expanding notation
// ("78+0x3 80+2.5x4" is 78 78 78 78 80 82.5 85 87.5 90).
type InputSeries struct {
	Series string `json:"series" yaml:"series"`
	Values string `json:"values" yaml:"values"`
}

// RuleTestOptions configures [Registry.RuleTestInput].
type RuleTestOptions struct {
	// Interval between samples, the test's interval; default 1m (the
	// default of promtool).
	Interval time.Duration
	// Duration rendered; default the scenario's Duration, else its last
	// phase's start plus 5 minutes. At most 100,000 samples a series.
	Duration time.Duration
	// Labels are added to every series (e.g. job="mock-metrics"); they
	// must not be labels of the family.
	Labels Labels
}

// maxRuleTestSamples bounds the samples rendered per series.
const maxRuleTestSamples = 100_000

// RuleTestInput renders the series a scenario drives (gauges and counters)
// as the input_series of a promtool rule test, so that the scenario that
// drives the live pipeline unit-tests the alert rules too. The values are
// the ones a scrape would read: a scratch registry with r's families (the
// series' own sources copied when they are of this package) runs sc under
// a clock starting at the Unix epoch, promtool's time 0, read every
// Interval. r itself is not changed.
func (r *Registry) RuleTestInput(sc Scenario, opts RuleTestOptions) ([]InputSeries, error) {
	if err := sc.validateShape(); err != nil {
		return nil, err
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Minute
	}
	if opts.Duration <= 0 {
		opts.Duration = time.Duration(sc.Duration)
		if opts.Duration <= 0 {
			for _, p := range sc.Phases {
				opts.Duration = max(opts.Duration, time.Duration(p.At))
			}
			opts.Duration += 5 * time.Minute
		}
	}
	steps := int64(opts.Duration / opts.Interval)
	if steps+1 > maxRuleTestSamples {
		return nil, validationf("duration", "%d samples a series, over %d", steps+1, maxRuleTestSamples)
	}
	clock := time.Unix(0, 0).UTC()
	scratch, targets, err := r.scratchFor(sc, func() time.Time { return clock })
	if err != nil {
		return nil, err
	}
	if _, err := scratch.StartScenario(sc); err != nil {
		return nil, err
	}
	vals := make([][]float64, len(targets))
	for i := range steps + 1 {
		clock = time.Unix(0, 0).UTC().Add(time.Duration(i) * opts.Interval)
		for j, t := range targets {
			v, err := scratch.Value(t.Metric, t.Labels)
			if err != nil {
				return nil, err
			}
			vals[j] = append(vals[j], v)
		}
	}
	out := make([]InputSeries, len(targets))
	for j, t := range targets {
		name, err := seriesSelector(t, opts.Labels)
		if err != nil {
			return nil, err
		}
		out[j] = InputSeries{Series: name, Values: ExpandingNotation(vals[j])}
	}
	return out, nil
}

// scratchFor returns an empty registry with r's families and the series
// sc drives (with their own sources), and those series, in order of first
// mention, with every label resolved.
func (r *Registry) scratchFor(sc Scenario, now func() time.Time) (*Registry, []SeriesRef, error) {
	r.mu.Lock()
	opts := r.opts
	r.mu.Unlock()
	opts.Empty, opts.Now = true, now
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	scratch := New(opts)
	var targets []SeriesRef
	seen := map[string]bool{}
	for _, p := range sc.Phases {
		for _, t := range p.Set {
			ref, own, err := r.resolveTarget(t)
			if err != nil {
				return nil, nil, err
			}
			key := ref.Metric + sortedPairs(ref.Labels)
			if seen[key] {
				continue
			}
			seen[key] = true
			if err := scratch.copyFamily(r, ref.Metric); err != nil {
				return nil, nil, err
			}
			if err := scratch.Set(ref.Metric, ref.Labels, own); err != nil {
				return nil, nil, err
			}
			targets = append(targets, ref)
		}
	}
	return scratch, targets, nil
}

// resolveTarget resolves a target's labels in r and returns the series'
// own source in r (a constant 0 when the series does not exist yet or its
// source is not of this package).
func (r *Registry) resolveTarget(t Target) (SeriesRef, Source, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f, vals, err := r.resolveLocked(t.Metric, t.Labels)
	if err != nil {
		return SeriesRef{}, nil, err
	}
	if f.opts.Type != Gauge && f.opts.Type != Counter {
		return SeriesRef{}, nil, fmt.Errorf("%w: rule test input renders gauges and counters, %s is a %s", ErrWrongType, f.opts.Name, f.opts.Type)
	}
	ref := SeriesRef{Metric: f.opts.Name, Labels: Labels{}}
	for i, ln := range f.opts.LabelNames {
		ref.Labels[ln] = vals[i]
	}
	var own Source = Constant(0)
	if s, ok := f.series[seriesKey(vals)]; ok {
		if spec := SpecOf(s.src); spec.Kind != "custom" {
			own = s.src
		}
	}
	return ref, own, nil
}

// copyFamily declares src's family name in r unless it is there.
func (r *Registry) copyFamily(src *Registry, name string) error {
	r.mu.Lock()
	_, ok := r.fams[name]
	r.mu.Unlock()
	if ok {
		return nil
	}
	for _, m := range src.Families() {
		if m.Name == name {
			return r.Declare(m)
		}
	}
	return fmt.Errorf("%w: %q", ErrUnknownMetric, name)
}

func sortedPairs(l Labels) string {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString("\xff" + k + "\xfe" + l[k])
	}
	return b.String()
}

// seriesSelector writes name{a="x",...} with the extra labels, sorted.
func seriesSelector(ref SeriesRef, extra Labels) (string, error) {
	all := Labels{}
	for k, v := range ref.Labels {
		all[k] = v
	}
	for k, v := range extra {
		if _, ok := all[k]; ok || !validLabelName(k) {
			return "", validationf("labels", "extra label %q is not a valid label name or is a label of %s", truncate(k), ref.Metric)
		}
		if err := checkLabelText(k, v); err != nil {
			return "", err
		}
		all[k] = v
	}
	keys := make([]string, 0, len(all))
	for k := range all {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	b.WriteString(ref.Metric + "{")
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k + "=" + strconv.Quote(all[k]))
	}
	b.WriteByte('}')
	return b.String(), nil
}

// ExpandingNotation writes values in promtool's expanding notation: a run
// of values that repeated addition of one step reproduces exactly, as
// promtool expands "a+bxN" (a, a+b, ... N+1 values), is written that way;
// other values one by one.
func ExpandingNotation(vals []float64) string {
	var parts []string
	for i := 0; i < len(vals); {
		n := runLength(vals[i:])
		if n == 0 {
			parts = append(parts, formatValue(vals[i]))
			i++
			continue
		}
		step := vals[i+1] - vals[i]
		sign := "+"
		if step < 0 || (step == 0 && math.Signbit(step)) {
			sign = "-"
		}
		parts = append(parts, formatValue(vals[i])+sign+formatValue(math.Abs(step))+"x"+strconv.Itoa(n))
		i += n + 1
	}
	return strings.Join(parts, " ")
}

// runLength is how many values after vals[0] repeated addition of
// vals[1]-vals[0] reproduces bit for bit (0 if fewer than 1).
func runLength(vals []float64) int {
	if len(vals) < 2 {
		return 0
	}
	step := vals[1] - vals[0]
	if math.IsNaN(step) || math.IsInf(step, 0) {
		return 0
	}
	// The step as written must parse back to the same float.
	if b, err := strconv.ParseFloat(formatValue(math.Abs(step)), 64); err != nil || b != math.Abs(step) {
		return 0
	}
	cur, n := vals[0], 0
	for _, v := range vals[1:] {
		cur += step
		if cur != v {
			break
		}
		n++
	}
	return n
}

func formatValue(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
