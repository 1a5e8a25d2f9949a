package mockexporter

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// A Source computes the value of a simulated series at collect time. For a
// gauge it is the value itself; for a counter it is a rate per second that the
// counter integrates; for a histogram it is the value of each simulated
// observation.
//
// now is the collect time read from the registry's clock. elapsed is the time
// since the source was attached to its series (or since its scenario phase
// began), the origin of one-shot shapes such as a ramp. Periodic and seeded
// sources (sine, square, noise, random walk) use now, so that two exporters
// with the same parameters agree, across restarts, on the value at an instant.
//
// Value must be safe for concurrent use and must not block; every source of
// this package is an immutable value.
type Source interface {
	Value(now time.Time, elapsed time.Duration) float64
	// Bounds returns the range Value stays within. The registry rejects a
	// source whose bounds leave the range its metric allows (for example a
	// sine reaching 120 on a *_percent gauge).
	Bounds() (lo, hi float64)
}

// Validator is implemented by sources that can check their parameters.
// Registry.Set calls it before attaching a source.
type Validator interface {
	Validate() error
}

// Constant is a fixed value.
type Constant float64

// Value returns c.
func (c Constant) Value(time.Time, time.Duration) float64 { return float64(c) }

// Bounds returns c, c.
func (c Constant) Bounds() (float64, float64) { return float64(c), float64(c) }

// Validate rejects NaN and infinities.
func (c Constant) Validate() error { return finite("value", float64(c)) }

// Steps walks through Values, holding each for Every, then holds the last
// value (or starts over when Repeat is set).
type Steps struct {
	Values []float64
	Every  time.Duration
	Repeat bool
}

// Value returns the step active at elapsed.
func (s Steps) Value(_ time.Time, elapsed time.Duration) float64 {
	if len(s.Values) == 0 || s.Every <= 0 {
		return 0
	}
	if elapsed < 0 {
		elapsed = 0
	}
	i := int64(elapsed / s.Every)
	n := int64(len(s.Values))
	if s.Repeat {
		i %= n
	} else if i >= n {
		i = n - 1
	}
	return s.Values[i]
}

// Bounds returns the smallest and largest step.
func (s Steps) Bounds() (float64, float64) {
	if len(s.Values) == 0 {
		return 0, 0
	}
	lo, hi := s.Values[0], s.Values[0]
	for _, v := range s.Values[1:] {
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	return lo, hi
}

// Validate checks that there is at least one finite value and a positive step
// length.
func (s Steps) Validate() error {
	if len(s.Values) == 0 {
		return validationf("values", "steps needs at least one value")
	}
	if len(s.Values) > maxSteps {
		return validationf("values", "at most %d steps", maxSteps)
	}
	for i, v := range s.Values {
		if err := finite("values["+strconv.Itoa(i)+"]", v); err != nil {
			return err
		}
	}
	return positive("every", s.Every)
}

// Ramp goes linearly From → To over Duration, then holds To.
type Ramp struct {
	From, To float64
	Duration time.Duration
}

// Value returns the point of the ramp at elapsed.
func (r Ramp) Value(_ time.Time, elapsed time.Duration) float64 {
	switch {
	case elapsed <= 0:
		return r.From
	case elapsed >= r.Duration:
		return r.To
	}
	f := float64(elapsed) / float64(r.Duration)
	return r.From + (r.To-r.From)*f
}

// Bounds returns From and To, in order.
func (r Ramp) Bounds() (float64, float64) { return math.Min(r.From, r.To), math.Max(r.From, r.To) }

// Validate checks the ends and the duration.
func (r Ramp) Validate() error {
	return errors.Join(finite("from", r.From), finite("to", r.To), positive("duration", r.Duration))
}

// Sine oscillates around Base with Amplitude and Period. Its phase is taken
// from the wall clock (now modulo Period), so it agrees across restarts.
type Sine struct {
	Base, Amplitude float64
	Period          time.Duration
}

// Value returns Base + Amplitude·sin(2π·now/Period).
func (s Sine) Value(now time.Time, _ time.Duration) float64 {
	if s.Period <= 0 {
		return s.Base
	}
	ph := float64(mod(now.UnixNano(), int64(s.Period))) / float64(s.Period)
	return s.Base + s.Amplitude*math.Sin(2*math.Pi*ph)
}

// Bounds returns Base ± |Amplitude|.
func (s Sine) Bounds() (float64, float64) {
	a := math.Abs(s.Amplitude)
	return s.Base - a, s.Base + a
}

// Validate checks the parameters.
func (s Sine) Validate() error {
	return errors.Join(finite("base", s.Base), finite("amplitude", s.Amplitude), positive("period", s.Period))
}

// Square flaps between Low and High: High for the first Duty fraction of each
// Period (0 < Duty < 1, default 0.5), Low for the rest. Like [Sine] its phase
// follows the wall clock.
type Square struct {
	Low, High float64
	Period    time.Duration
	Duty      float64
}

// Value returns High or Low.
func (s Square) Value(now time.Time, _ time.Duration) float64 {
	if s.Period <= 0 {
		return s.Low
	}
	duty := s.Duty
	if duty == 0 {
		duty = 0.5
	}
	ph := float64(mod(now.UnixNano(), int64(s.Period))) / float64(s.Period)
	if ph < duty {
		return s.High
	}
	return s.Low
}

// Bounds returns Low and High, in order.
func (s Square) Bounds() (float64, float64) { return math.Min(s.Low, s.High), math.Max(s.Low, s.High) }

// Validate checks the parameters.
func (s Square) Validate() error {
	var derr error
	if s.Duty < 0 || s.Duty >= 1 || math.IsNaN(s.Duty) {
		derr = validationf("duty", "must be in (0, 1), got %v", s.Duty)
	}
	return errors.Join(finite("low", s.Low), finite("high", s.High), positive("period", s.Period), derr)
}

// Spike is Base, except Base+Height during [At, At+Width) after the source
// starts; with Every > 0 the spike repeats every Every.
type Spike struct {
	Base, Height float64
	At, Width    time.Duration
	Every        time.Duration
}

// Value returns the spike level at elapsed.
func (s Spike) Value(_ time.Time, elapsed time.Duration) float64 {
	e := elapsed - s.At
	if e < 0 {
		return s.Base
	}
	if s.Every > 0 {
		e %= s.Every
	}
	if e < s.Width {
		return s.Base + s.Height
	}
	return s.Base
}

// Bounds returns Base and Base+Height, in order.
func (s Spike) Bounds() (float64, float64) {
	return math.Min(s.Base, s.Base+s.Height), math.Max(s.Base, s.Base+s.Height)
}

// Validate checks the parameters.
func (s Spike) Validate() error {
	var errs []error
	errs = append(errs, finite("base", s.Base), finite("height", s.Height), positive("width", s.Width))
	if s.At < 0 {
		errs = append(errs, validationf("at", "must not be negative"))
	}
	if s.Every < 0 || (s.Every > 0 && s.Every < s.Width) {
		errs = append(errs, validationf("every", "must be 0 or at least width"))
	}
	return errors.Join(errs...)
}

// Noise is Base plus a uniform value in [-Amplitude, Amplitude] that changes
// every Interval (default 1s). The value is a hash of Seed and the wall-clock
// interval number, so it is the same for the same instant whatever the order
// or number of scrapes, and across restarts.
type Noise struct {
	Seed            int64
	Base, Amplitude float64
	Interval        time.Duration
}

// Value returns the noisy value for the interval holding now.
func (n Noise) Value(now time.Time, _ time.Duration) float64 {
	iv := n.Interval
	if iv <= 0 {
		iv = time.Second
	}
	k := floorDiv(now.UnixNano(), int64(iv))
	return n.Base + n.Amplitude*unit(uint64(n.Seed), 0, k)
}

// Bounds returns Base ± |Amplitude|.
func (n Noise) Bounds() (float64, float64) {
	a := math.Abs(n.Amplitude)
	return n.Base - a, n.Base + a
}

// Validate checks the parameters.
func (n Noise) Validate() error {
	return errors.Join(finite("base", n.Base), finite("amplitude", n.Amplitude), nonNegative("interval", n.Interval))
}

// RandomWalk wanders around Base between Min and Max, moving by about Step
// per Interval (default 1s). It is a deterministic function of Seed and the
// wall clock (a sum of interpolated hash noise at doubling time scales, whose
// increments grow like a random walk's), so it needs no state: the same
// instant gives the same value in every process. It is reflected at Min and
// Max.
type RandomWalk struct {
	Seed       int64
	Base, Step float64
	Min, Max   float64
	Interval   time.Duration // at most MaxWalkInterval
}

// MaxWalkInterval is the longest [RandomWalk] interval: the walk sums noise
// over 12 doubling time scales, up to 2048 intervals.
const MaxWalkInterval = 24 * time.Hour

// Value returns the walk's position at now.
func (w RandomWalk) Value(now time.Time, _ time.Duration) float64 {
	iv := w.Interval
	if iv <= 0 {
		iv = time.Second
	}
	const scales = 12 // doubling time scales: 1 to 2048 intervals
	t := now.UnixNano()
	v := w.Base
	for l := 0; l < scales; l++ {
		span := int64(iv) << l
		if span <= 0 { // an unvalidated interval so long it overflows
			break
		}
		k := floorDiv(t, span)
		f := float64(t-k*span) / float64(span)
		f = f * f * (3 - 2*f) // smoothstep
		a := unit(uint64(w.Seed), uint64(l+1), k)
		b := unit(uint64(w.Seed), uint64(l+1), k+1)
		v += w.Step * math.Sqrt(float64(int64(1)<<l)) * (a + (b-a)*f)
	}
	return reflect(v, w.Min, w.Max)
}

// Bounds returns Min and Max.
func (w RandomWalk) Bounds() (float64, float64) { return w.Min, w.Max }

// Validate checks the parameters: Min < Max and Base within them.
func (w RandomWalk) Validate() error {
	var errs []error
	errs = append(errs, finite("base", w.Base), finite("step", w.Step), finite("min", w.Min), finite("max", w.Max),
		nonNegative("interval", w.Interval))
	if w.Interval > MaxWalkInterval {
		errs = append(errs, validationf("interval", "must be at most %v", MaxWalkInterval))
	}
	if !(w.Min < w.Max) {
		errs = append(errs, validationf("max", "must be greater than min"))
	} else if w.Base < w.Min || w.Base > w.Max {
		errs = append(errs, validationf("base", "must be within [min, max]"))
	}
	if w.Step < 0 {
		errs = append(errs, validationf("step", "must not be negative"))
	}
	return errors.Join(errs...)
}

// Sum adds its sources, e.g. a ramp plus noise.
type Sum []Source

// Value returns the sum of the sources' values.
func (s Sum) Value(now time.Time, elapsed time.Duration) float64 {
	var v float64
	for _, src := range s {
		v += src.Value(now, elapsed)
	}
	return v
}

// Bounds returns the sum of the bounds.
func (s Sum) Bounds() (float64, float64) {
	var lo, hi float64
	for _, src := range s {
		l, h := src.Bounds()
		lo += l
		hi += h
	}
	return lo, hi
}

// Validate validates every part.
func (s Sum) Validate() error {
	if len(s) == 0 || len(s) > maxSteps {
		return validationf("sources", "sum needs 1 to %d sources", maxSteps)
	}
	var errs []error
	for i, src := range s {
		if src == nil {
			errs = append(errs, validationf("sources["+strconv.Itoa(i)+"]", "nil source"))
			continue
		}
		if v, ok := src.(Validator); ok {
			errs = append(errs, v.Validate())
		}
	}
	return errors.Join(errs...)
}

const maxSteps = 1000

// SourceSpec is the JSON and YAML form of a [Source], used by the control API
// and by scenarios. Kind selects the source; the other fields are its
// parameters (durations are strings such as "90s" or "5m"):
//
//	constant:   value
//	steps:      values, every, repeat
//	ramp:       from, to, duration
//	sine:       base, amplitude, period
//	square:     low, high, period, duty
//	spike:      base, height, at, width, every
//	noise:      seed, base, amplitude, interval
//	randomwalk: seed, base, step, min, max, interval
//	sum:        sources
type SourceSpec struct {
	Kind      string       `json:"kind" yaml:"kind"`
	Value     float64      `json:"value,omitempty" yaml:"value,omitempty"`
	Values    []float64    `json:"values,omitempty" yaml:"values,omitempty"`
	From      float64      `json:"from,omitempty" yaml:"from,omitempty"`
	To        float64      `json:"to,omitempty" yaml:"to,omitempty"`
	Base      float64      `json:"base,omitempty" yaml:"base,omitempty"`
	Amplitude float64      `json:"amplitude,omitempty" yaml:"amplitude,omitempty"`
	Low       float64      `json:"low,omitempty" yaml:"low,omitempty"`
	High      float64      `json:"high,omitempty" yaml:"high,omitempty"`
	Duty      float64      `json:"duty,omitempty" yaml:"duty,omitempty"`
	Height    float64      `json:"height,omitempty" yaml:"height,omitempty"`
	Step      float64      `json:"step,omitempty" yaml:"step,omitempty"`
	Min       float64      `json:"min,omitempty" yaml:"min,omitempty"`
	Max       float64      `json:"max,omitempty" yaml:"max,omitempty"`
	Seed      int64        `json:"seed,omitempty" yaml:"seed,omitempty"`
	Repeat    bool         `json:"repeat,omitempty" yaml:"repeat,omitempty"`
	Duration  Duration     `json:"duration,omitempty" yaml:"duration,omitempty"`
	Period    Duration     `json:"period,omitempty" yaml:"period,omitempty"`
	Every     Duration     `json:"every,omitempty" yaml:"every,omitempty"`
	At        Duration     `json:"at,omitempty" yaml:"at,omitempty"`
	Width     Duration     `json:"width,omitempty" yaml:"width,omitempty"`
	Interval  Duration     `json:"interval,omitempty" yaml:"interval,omitempty"`
	Sources   []SourceSpec `json:"sources,omitempty" yaml:"sources,omitempty"`
}

// Source builds and validates the source the spec describes.
func (s SourceSpec) Source() (Source, error) {
	nodes := 0
	return s.build(0, &nodes)
}

// maxSourceNodes bounds the work one read of a source can cost.
const maxSourceNodes = 1000

func (s SourceSpec) build(depth int, nodes *int) (Source, error) {
	if depth > 8 {
		return nil, validationf("sources", "sum nested too deeply")
	}
	if *nodes++; *nodes > maxSourceNodes {
		return nil, validationf("sources", "at most %d sources in all", maxSourceNodes)
	}
	var src Source
	switch strings.ToLower(s.Kind) {
	case "constant":
		src = Constant(s.Value)
	case "steps":
		src = Steps{Values: s.Values, Every: time.Duration(s.Every), Repeat: s.Repeat}
	case "ramp":
		src = Ramp{From: s.From, To: s.To, Duration: time.Duration(s.Duration)}
	case "sine":
		src = Sine{Base: s.Base, Amplitude: s.Amplitude, Period: time.Duration(s.Period)}
	case "square", "flapping":
		src = Square{Low: s.Low, High: s.High, Period: time.Duration(s.Period), Duty: s.Duty}
	case "spike":
		src = Spike{Base: s.Base, Height: s.Height, At: time.Duration(s.At), Width: time.Duration(s.Width), Every: time.Duration(s.Every)}
	case "noise":
		src = Noise{Seed: s.Seed, Base: s.Base, Amplitude: s.Amplitude, Interval: time.Duration(s.Interval)}
	case "randomwalk", "random_walk", "random-walk":
		src = RandomWalk{Seed: s.Seed, Base: s.Base, Step: s.Step, Min: s.Min, Max: s.Max, Interval: time.Duration(s.Interval)}
	case "sum":
		if len(s.Sources) == 0 || len(s.Sources) > maxSteps {
			return nil, validationf("sources", "sum needs 1 to %d sources", maxSteps)
		}
		sum := make(Sum, 0, len(s.Sources))
		for _, sub := range s.Sources {
			p, err := sub.build(depth+1, nodes)
			if err != nil {
				return nil, err
			}
			sum = append(sum, p)
		}
		src = sum
	case "":
		return nil, validationf("source.kind", "missing")
	default:
		return nil, validationf("source.kind", "unknown source kind %q", s.Kind)
	}
	if v, ok := src.(Validator); ok {
		if err := v.Validate(); err != nil {
			return nil, err
		}
	}
	return src, nil
}

// SpecOf returns the spec of a source of this package, or a spec of kind
// "custom" for any other Source.
func SpecOf(src Source) SourceSpec {
	switch s := src.(type) {
	case Constant:
		return SourceSpec{Kind: "constant", Value: float64(s)}
	case Steps:
		return SourceSpec{Kind: "steps", Values: s.Values, Every: Duration(s.Every), Repeat: s.Repeat}
	case Ramp:
		return SourceSpec{Kind: "ramp", From: s.From, To: s.To, Duration: Duration(s.Duration)}
	case Sine:
		return SourceSpec{Kind: "sine", Base: s.Base, Amplitude: s.Amplitude, Period: Duration(s.Period)}
	case Square:
		return SourceSpec{Kind: "square", Low: s.Low, High: s.High, Period: Duration(s.Period), Duty: s.Duty}
	case Spike:
		return SourceSpec{Kind: "spike", Base: s.Base, Height: s.Height, At: Duration(s.At), Width: Duration(s.Width), Every: Duration(s.Every)}
	case Noise:
		return SourceSpec{Kind: "noise", Seed: s.Seed, Base: s.Base, Amplitude: s.Amplitude, Interval: Duration(s.Interval)}
	case RandomWalk:
		return SourceSpec{Kind: "randomwalk", Seed: s.Seed, Base: s.Base, Step: s.Step, Min: s.Min, Max: s.Max, Interval: Duration(s.Interval)}
	case Sum:
		out := SourceSpec{Kind: "sum"}
		for _, p := range s {
			out.Sources = append(out.Sources, SpecOf(p))
		}
		return out
	}
	return SourceSpec{Kind: "custom"}
}

// Duration is a time.Duration written as a Go duration string ("1m30s") in
// JSON and YAML. A bare number is read as seconds.
type Duration time.Duration

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a duration string or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		return d.parse(s)
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("duration must be a string such as \"5m\" or a number of seconds: %w", err)
	}
	return d.seconds(f)
}

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// UnmarshalYAML reads a duration string or a number of seconds.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return errors.New("duration must be a scalar such as 5m")
	}
	if f, err := strconv.ParseFloat(n.Value, 64); err == nil {
		return d.seconds(f)
	}
	return d.parse(n.Value)
}

func (d *Duration) parse(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q: %w", s, err)
	}
	*d = Duration(v)
	return nil
}

func (d *Duration) seconds(f float64) error {
	if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > float64(math.MaxInt64/int64(time.Second)) {
		return fmt.Errorf("invalid duration %v", f)
	}
	*d = Duration(f * float64(time.Second))
	return nil
}

func finite(field string, v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return validationf(field, "must be a finite number, got %v", v)
	}
	return nil
}

func positive(field string, d time.Duration) error {
	if d <= 0 {
		return validationf(field, "must be a positive duration")
	}
	return nil
}

func nonNegative(field string, d time.Duration) error {
	if d < 0 {
		return validationf(field, "must not be negative")
	}
	return nil
}

func mod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// unit hashes (seed, stream, k) to a uniform value in [-1, 1] (splitmix64).
func unit(seed, stream uint64, k int64) float64 {
	x := seed ^ (stream * 0x9e3779b97f4a7c15) ^ (uint64(k) * 0xbf58476d1ce4e5b9)
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	x ^= x >> 31
	return float64(x>>11)/float64(uint64(1)<<53)*2 - 1
}

// reflect folds v into [lo, hi] as a walk bouncing off both walls.
func reflect(v, lo, hi float64) float64 {
	if !(lo < hi) {
		return v
	}
	w := hi - lo
	x := math.Mod(v-lo, 2*w)
	if x < 0 {
		x += 2 * w
	}
	if x > w {
		x = 2*w - x
	}
	return lo + x
}
