package mockexporter

import (
	"fmt"
	"math"
	"strings"
	"unicode/utf8"
)

// Type is the Prometheus type of a simulated metric family.
type Type int

// Metric types.
const (
	Gauge Type = iota
	Counter
	Histogram
	// Summary: quantiles of the observations of a sliding window, and
	// their cumulative count and sum (see [MetricOptions].Quantiles).
	Summary
	// GaugeHistogram: the distribution of the observations of a sliding
	// window (it can go down), exposed as gaugehistogram in OpenMetrics.
	GaugeHistogram
)

// maxType is the last valid Type.
const maxType = GaugeHistogram

// bucketed reports the types with buckets.
func (t Type) bucketed() bool { return t == Histogram || t == GaugeHistogram }

// observed reports the types fed by observations.
func (t Type) observed() bool { return t == Histogram || t == GaugeHistogram || t == Summary }

func (t Type) String() string {
	switch t {
	case Gauge:
		return "gauge"
	case Counter:
		return "counter"
	case Histogram:
		return "histogram"
	case Summary:
		return "summary"
	case GaugeHistogram:
		return "gaugehistogram"
	}
	return fmt.Sprintf("Type(%d)", int(t))
}

// MarshalText writes the type name.
func (t Type) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText reads "gauge", "counter" or "histogram".
func (t *Type) UnmarshalText(b []byte) error {
	switch string(b) {
	case "gauge", "":
		*t = Gauge
	case "counter":
		*t = Counter
	case "histogram":
		*t = Histogram
	case "summary":
		*t = Summary
	case "gaugehistogram", "gauge_histogram":
		*t = GaugeHistogram
	default:
		return validationf("type", "must be gauge, counter, histogram, summary or gaugehistogram, got %q", truncate(string(b)))
	}
	return nil
}

// Range is the set of values a family accepts. Writes outside it are
// rejected with a [ValidationError]; sources whose bounds leave it are
// rejected too, and computed values are clamped into it.
type Range int

// Ranges.
const (
	// Any finite value.
	Any Range = iota
	// NonNegative: ≥ 0 (bytes, seconds).
	NonNegative
	// Percent: 0 to 100.
	Percent
	// Status: 0 or 1; computed values are rounded to the nearer.
	Status
	// Count: a whole number ≥ 0; computed values are rounded.
	Count
)

var rangeNames = [...]string{"any", "nonnegative", "percent", "status", "count"}

func (r Range) String() string {
	if r >= 0 && int(r) < len(rangeNames) {
		return rangeNames[r]
	}
	return fmt.Sprintf("Range(%d)", int(r))
}

// MarshalText writes the range name.
func (r Range) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText reads a range name ("" means any).
func (r *Range) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*r = Any
		return nil
	}
	for i, n := range rangeNames {
		if n == string(b) {
			*r = Range(i)
			return nil
		}
	}
	return validationf("range", "must be one of %s, got %q", strings.Join(rangeNames[:], ", "), truncate(string(b)))
}

func (r Range) limits() (lo, hi float64) {
	switch r {
	case NonNegative, Count:
		return 0, math.Inf(1)
	case Percent:
		return 0, 100
	case Status:
		return 0, 1
	}
	return math.Inf(-1), math.Inf(1)
}

// check validates a value written directly (not computed by a source).
func (r Range) check(v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return validationf("value", "must be a finite number, got %v", v)
	}
	switch r {
	case NonNegative:
		if v < 0 {
			return validationf("value", "must not be negative, got %v", v)
		}
	case Percent:
		if v < 0 || v > 100 {
			return validationf("value", "is a percentage and must be between 0 and 100, got %v", v)
		}
	case Status:
		if v != 0 && v != 1 {
			return validationf("value", "is a status and must be 0 or 1, got %v", v)
		}
	case Count:
		if v < 0 || v != math.Trunc(v) {
			return validationf("value", "is a count and must be a whole number ≥ 0, got %v", v)
		}
	}
	return nil
}

// shape clamps (and for Status/Count rounds) a computed value; it is never
// NaN or infinite, whatever a source returns.
func (r Range) shape(v float64) float64 {
	if math.IsNaN(v) {
		return 0
	}
	lo, hi := r.limits()
	v = capFinite(math.Min(math.Max(v, lo), hi))
	switch r {
	case Status:
		if v >= 0.5 {
			return 1
		}
		return 0
	case Count:
		return math.Round(v)
	}
	return v
}

// Labels maps label names to values.
type Labels map[string]string

// MetricOptions declares a simulated metric family.
type MetricOptions struct {
	// Name must be a legacy Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*).
	Name string `json:"name"`
	// Help defaults to "Simulated metric <name>.".
	Help string `json:"help,omitempty"`
	Type Type   `json:"type"`
	// LabelNames are the family's label names, in order.
	LabelNames []string `json:"labels,omitempty"`
	// Range is the set of values accepted (for counters and histograms it
	// applies to the rate or observations; counters always need ≥ 0 rates).
	Range Range `json:"range"`
	// Defaults are label values used for any label a caller leaves out; when
	// every label has a default (or there are no labels) the family starts
	// with that default series, so it is exposed from the first scrape.
	Defaults Labels `json:"defaults,omitempty"`
	// Initial is the default series' starting value (gauges) or rate
	// (counters), default 0.
	Initial float64 `json:"initial,omitempty"`
	// Buckets are histogram upper bounds; default prometheus.DefBuckets.
	Buckets []float64 `json:"buckets,omitempty"`
	// ObservationsPerSecond is how many observations a histogram, summary
	// or gauge histogram simulates per second from its source; default 1.
	// Explicit observations come on top.
	ObservationsPerSecond float64 `json:"observations_per_second,omitempty"`
	// Quantiles are a summary's quantiles, each in (0, 1); default 0.5,
	// 0.9, 0.99.
	Quantiles []float64 `json:"quantiles,omitempty"`
	// MaxAge is the sliding window of a summary's quantiles and of a gauge
	// histogram's distribution; default 10m (client_golang's
	// DefMaxAge), at most 24h.
	MaxAge Duration `json:"max_age,omitempty"`
	// NativeBucketFactor > 1 gives a histogram native (sparse) buckets
	// too, exposed in the protobuf format, each bucket's upper bound at
	// most this factor times its lower bound; the schema is picked as
	// client_golang's NativeHistogramBucketFactor picks it (1.1: schema 3).
	// With Buckets an empty list (not left out) the histogram is native
	// only. A series keeps at most MaxBuckets native buckets a sign,
	// halving its resolution (schema - 1) when it would hold more.
	NativeBucketFactor float64 `json:"native_bucket_factor,omitempty"`
	// Exemplars gives a counter or histogram exemplars with seeded trace
	// IDs (see Exemplars in the package documentation).
	Exemplars bool `json:"exemplars,omitempty"`
	// ExemplarSeed seeds the exemplars' trace IDs.
	ExemplarSeed int64 `json:"exemplar_seed,omitempty"`
}

// MaxLabelValueLen is the default of Options.MaxLabelValueBytes, the longest
// label value accepted, in bytes.
const MaxLabelValueLen = 128

// checkLabelValue checks a label value's text (see checkLabelText) and its
// length (maxLen bytes at most).
func checkLabelValue(name, v string, maxLen int) error {
	if err := checkLabelText(name, v); err != nil {
		return err
	}
	if len(v) > maxLen {
		return validationf("labels."+name, "longer than %d bytes (MaxLabelValueBytes)", maxLen)
	}
	return nil
}

// checkLabelText refuses an empty label value, invalid UTF-8 (lone
// surrogates included: Go's UTF-8 has none) and control characters other
// than tab and newline (which Prometheus label values may hold, escaped in
// the exposition).
func checkLabelText(name, v string) error {
	switch {
	case v == "":
		return validationf("labels."+name, "must not be empty")
	case !utf8.ValidString(v):
		return validationf("labels."+name, "is not valid UTF-8")
	}
	if i := strings.IndexFunc(v, isLabelControl); i >= 0 {
		return validationf("labels."+name, "control character %U at byte %d", []rune(v[i:])[0], i)
	}
	return nil
}

// checkPathLabel is checkLabelText for a label value taken from a seed
// route's path (a device, service or queue name), which holds no control
// character at all.
func checkPathLabel(name, v string) error {
	if err := checkLabelText(name, v); err != nil {
		return err
	}
	if i := strings.IndexFunc(v, isControl); i >= 0 {
		return validationf("labels."+name, "control character %U at byte %d", []rune(v[i:])[0], i)
	}
	return nil
}

// isLabelControl reports the control characters a label value may not
// hold: isControl but tab and newline.
func isLabelControl(c rune) bool { return isControl(c) && c != '\t' && c != '\n' }

// isControl reports the C0 control characters (NUL to U+001F) and DEL.
func isControl(c rune) bool { return c < 0x20 || c == 0x7f }

func validMetricName(s string) bool {
	if s == "" || len(s) > 200 {
		return false
	}
	for i, c := range []byte(s) {
		if !(c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (i > 0 && c >= '0' && c <= '9')) {
			return false
		}
	}
	return true
}

func validLabelName(s string) bool {
	if s == "" || len(s) > 200 || strings.HasPrefix(s, "__") {
		return false
	}
	for i, c := range []byte(s) {
		if !(c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (i > 0 && c >= '0' && c <= '9')) {
			return false
		}
	}
	return true
}
