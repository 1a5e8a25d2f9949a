package mockexporter

import (
	"fmt"
	"strings"
)

// Defaults of the budgets in [Options].
const (
	// DefaultMaxSeries is the default of Options.MaxSeries.
	DefaultMaxSeries = 100_000
	// DefaultMaxBytes is the default of Options.MaxBytes: 64 MiB.
	DefaultMaxBytes = 64 << 20
	// DefaultMaxExpositionBytes is the default of Options.MaxExpositionBytes:
	// 16 MiB.
	DefaultMaxExpositionBytes = 16 << 20
	// DefaultMaxBuckets is the default of Options.MaxBuckets.
	DefaultMaxBuckets = 64
	// DefaultMaxLabels is the default of Options.MaxLabels.
	DefaultMaxLabels = 32
)

// The estimate of the memory the registry holds ([Usage].Bytes). It is an
// accounting rule, not a measurement: it grows with what a client can
// choose (names, label values, buckets) so that a budget bounds the real
// memory.
//
// A family costs FamilyOverheadBytes + len(name) + len(help) + the lengths
// of its label names + the lengths of its default label names and values +
// 8 bytes per bucket. A series costs SeriesOverheadBytes + len(metric name)
// + LabelOverheadBytes + len(name) + len(value) for each of its labels, for
// a histogram BucketBytes per bucket (the +Inf bucket included), and the
// size of its own source when it is not a constant (SourceBytes, plus 8
// bytes per step value, for each source of a sum). A started scenario
// costs ScenarioOverheadBytes + len(name), and per target
// TargetOverheadBytes + len(metric) + LabelOverheadBytes + len(name) +
// len(value) per label + the size of its source; it counts until it leaves
// the scenario history (Reset does not clear the history).
const (
	FamilyOverheadBytes   = 512
	SeriesOverheadBytes   = 256
	LabelOverheadBytes    = 64
	BucketBytes           = 16
	SourceBytes           = 64
	ScenarioOverheadBytes = 512
	TargetOverheadBytes   = 128
)

// RuntimeExpositionReserve is the part of Options.MaxExpositionBytes kept
// for the Go and process collectors that the Handler's /metrics serves too
// (about 8 KiB in practice); it is not reserved with
// DisableRuntimeCollectors.
const RuntimeExpositionReserve = 32 << 10

// maxSampleValueLen is the longest text of a sample value or a bucket
// bound: strconv.FormatFloat(v, 'g', -1, 64) of any float64, e.g.
// "-2.2250738585072014e-308".
const maxSampleValueLen = 24

// LimitError reports a change refused because it would exceed one of the
// registry's budgets (see [Options]); nothing was changed. It matches
// [ErrLimit] with errors.Is, and the HTTP API answers it with 413.
type LimitError struct {
	// Limit is the Options field or package constant that sets it, e.g.
	// "MaxBytes", "MaxFamilies", "running scenarios".
	Limit string
	// Max is its value.
	Max int64
	// Want is what the registry would hold with the change.
	Want int64
	// What names the quantity, e.g. "estimated bytes held".
	What string
}

// Is makes errors.Is(err, ErrLimit) true.
func (e *LimitError) Is(target error) bool { return target == ErrLimit }

func (e *LimitError) Error() string {
	return fmt.Sprintf("mockexporter: limit reached: %s is %d; the change would bring the %s to %d", e.Limit, e.Max, e.What, e.Want)
}

// Usage is what a registry holds against its budgets. The Max fields are
// the budgets in effect; -1 means no limit.
type Usage struct {
	Families  int `json:"families"`
	Series    int `json:"series"`
	MaxSeries int `json:"max_series"`
	// Bytes is the estimated memory of the families and series (see
	// SeriesOverheadBytes for the rule).
	Bytes    int64 `json:"bytes"`
	MaxBytes int64 `json:"max_bytes"`
	// ExpositionBytes is an upper bound of the size of the text exposition
	// of every series (HELP and TYPE lines included), plus
	// RuntimeExpositionReserve when the runtime collectors are served.
	ExpositionBytes    int64 `json:"exposition_bytes"`
	MaxExpositionBytes int64 `json:"max_exposition_bytes"`
}

// Usage returns the registry's current usage and budgets. Deleting series
// and Reset lower it again.
func (r *Registry) Usage() Usage {
	r.mu.Lock()
	defer r.mu.Unlock()
	return Usage{
		Families: len(r.fams), Series: r.nseries, MaxSeries: r.opts.MaxSeries,
		Bytes: r.usedBytes, MaxBytes: r.opts.MaxBytes,
		ExpositionBytes: r.usedExpo, MaxExpositionBytes: r.opts.MaxExpositionBytes,
	}
}

// cost is what a family or a series adds to the usage.
type cost struct {
	series int
	bytes  int64
	expo   int64
}

func (c cost) plus(o cost) cost {
	return cost{c.series + o.series, c.bytes + o.bytes, c.expo + o.expo}
}

// admitLocked checks that the registry can take c on top of what it holds.
func (r *Registry) admitLocked(c cost) error {
	if want := r.nseries + c.series; c.series > 0 && want > r.opts.MaxSeries {
		return &LimitError{Limit: "MaxSeries", Max: int64(r.opts.MaxSeries), Want: int64(want), What: "number of series"}
	}
	if want := r.usedBytes + c.bytes; r.opts.MaxBytes >= 0 && c.bytes > 0 && want > r.opts.MaxBytes {
		return &LimitError{Limit: "MaxBytes", Max: r.opts.MaxBytes, Want: want, What: "estimated bytes held (families, series, labels, sources, scenarios)"}
	}
	if want := r.usedExpo + c.expo; r.opts.MaxExpositionBytes >= 0 && c.expo > 0 && want > r.opts.MaxExpositionBytes {
		return &LimitError{Limit: "MaxExpositionBytes", Max: r.opts.MaxExpositionBytes, Want: want, What: "estimated size of the /metrics exposition"}
	}
	return nil
}

func (r *Registry) chargeLocked(c cost) {
	r.usedBytes += c.bytes
	r.usedExpo += c.expo
}

// familyCost is what a declared family costs before any series. m is
// normalised (help and buckets filled in).
func familyCost(m *MetricOptions) cost {
	b := int64(FamilyOverheadBytes + len(m.Name) + len(m.Help) + 8*len(m.Buckets))
	for _, ln := range m.LabelNames {
		b += int64(len(ln))
	}
	for k, v := range m.Defaults {
		b += int64(len(k) + len(v))
	}
	// "# HELP name help\n# TYPE name type\n"
	e := int64(18 + 2*len(m.Name) + escapedLen(m.Help) + len(m.Type.String()))
	return cost{bytes: b, expo: e}
}

// seriesCost is what one series of f with label values vals costs.
func seriesCost(f *family, vals []string) cost {
	m := &f.opts
	b := int64(SeriesOverheadBytes + len(m.Name))
	labels := 0 // the text of {a="x",b="y"}
	for i, ln := range m.LabelNames {
		b += int64(LabelOverheadBytes + len(ln) + len(vals[i]))
		labels += len(ln) + 3 + escapedLen(vals[i]) + 1 // name="value",
	}
	line := func(suffix, extraLabel int) int64 {
		l := labels + extraLabel
		if l > 0 {
			l++ // the braces, less the last comma
		}
		return int64(len(m.Name) + suffix + l + 1 + maxSampleValueLen + 1)
	}
	switch m.Type {
	case Counter:
		// OpenMetrics appends _total to a counter whose name lacks it.
		c := cost{series: 1, bytes: b, expo: line(len("_total"), 0)}
		if m.Exemplars {
			c.bytes += 64
			c.expo += int64(exemplarLineBytes)
		}
		return c
	case Histogram, GaugeHistogram:
		nb := int64(len(m.Buckets) + 1)
		b += BucketBytes * nb
		le := len(`le="",`) + maxSampleValueLen
		e := nb*line(len("_bucket"), le) + line(len("_gsum"), 0) + line(len("_gcount"), 0)
		if m.Type == GaugeHistogram {
			b += maxWindowObservations * 16
		}
		// Native buckets: at most nativeMax a sign and the zero bucket,
		// each a few bytes in the protobuf exposition.
		nn := int64(2*f.nativeMax + 1)
		b += BucketBytes * nn
		e += 8 * nn
		if m.Exemplars {
			b += 64 * nb
			e += int64(exemplarLineBytes) * nb
		}
		return cost{series: 1, bytes: b, expo: e}
	case Summary:
		b += 16*int64(len(m.Quantiles)) + maxWindowObservations*16
		q := len(`quantile="",`) + maxSampleValueLen
		e := int64(len(m.Quantiles))*line(0, q) + line(len("_sum"), 0) + line(len("_count"), 0)
		return cost{series: 1, bytes: b, expo: e}
	default:
		return cost{series: 1, bytes: b, expo: line(0, 0)}
	}
}

// escapedLen is an upper bound of the length of s escaped in the text or
// OpenMetrics format (backslash, double quote and newline take two bytes).
func escapedLen(s string) int {
	return len(s) + strings.Count(s, `\`) + strings.Count(s, `"`) + strings.Count(s, "\n")
}

// baseExposition is what the exposition costs with no family: the
// runtime collectors' reserve and the OpenMetrics "# EOF" line.
func (r *Registry) baseExposition() int64 {
	if r.opts.DisableRuntimeCollectors {
		return int64(len("# EOF\n"))
	}
	return RuntimeExpositionReserve + int64(len("# EOF\n"))
}

// sourceBytes is what a series' own source adds to its cost: nothing for a
// constant (the overhead covers it).
func sourceBytes(src Source) int64 {
	if _, ok := src.(Constant); ok {
		return 0
	}
	return specBytes(SpecOf(src))
}

func specBytes(spec SourceSpec) int64 {
	b := int64(SourceBytes + 8*len(spec.Values))
	for _, c := range spec.Sources {
		b += specBytes(c)
	}
	return b
}

// scenarioBytes is what a started scenario costs (sc as validated).
func scenarioBytes(sc *Scenario) int64 {
	b := int64(ScenarioOverheadBytes + len(sc.Name))
	for _, p := range sc.Phases {
		for _, t := range p.Set {
			b += int64(TargetOverheadBytes + len(t.Metric))
			for k, v := range t.Labels {
				b += int64(LabelOverheadBytes + len(k) + len(v))
			}
			switch {
			case t.Source != nil:
				b += specBytes(*t.Source)
			case t.Src != nil:
				b += specBytes(SpecOf(t.Src))
			}
		}
	}
	return b
}
