package mockexporter

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Scenario is a timed script of phases, e.g. "memory at 78% now, ramp to 95%
// over 5m at 1m, recover at 10m". While it runs, each series it names takes
// its value from the scenario's latest phase that has begun, with the phase's
// start as the source's origin; a series it does not (yet) drive keeps its
// own source. Everything is computed from the registry's clock at collect
// time, so a scenario needs no goroutine and is deterministic under a fake
// clock.
//
// In JSON or YAML (see [ParseScenario]):
//
//	name: memory-pressure
//	duration: 15m        # optional: the scenario finishes (or, with repeat, starts over)
//	phases:
//	  - at: 0s
//	    set:
//	      - metric: mock_high_memory_usage_bytes
//	        value: 78
//	  - at: 1m
//	    set:
//	      - metric: mock_high_memory_usage_bytes
//	        source: {kind: ramp, from: 78, to: 95, duration: 5m}
//	  - at: 10m
//	    set:
//	      - metric: mock_high_memory_usage_bytes
//	        value: 40
//
// For a counter the value or source is its rate per second; for a histogram,
// the value of its simulated observations. Labels left out take the family's
// defaults.
type Scenario struct {
	Name     string   `json:"name" yaml:"name"`
	Duration Duration `json:"duration,omitempty" yaml:"duration,omitempty"`
	Repeat   bool     `json:"repeat,omitempty" yaml:"repeat,omitempty"`
	Phases   []Phase  `json:"phases" yaml:"phases"`
}

// Phase is a step of a [Scenario] that begins At after the scenario starts.
type Phase struct {
	At  Duration `json:"at" yaml:"at"`
	Set []Target `json:"set" yaml:"set"`
}

// Target names a series and what drives it during a phase: exactly one of
// Value, Source or (from Go) Src.
type Target struct {
	Metric string      `json:"metric" yaml:"metric"`
	Labels Labels      `json:"labels,omitempty" yaml:"labels,omitempty"`
	Value  *float64    `json:"value,omitempty" yaml:"value,omitempty"`
	Source *SourceSpec `json:"source,omitempty" yaml:"source,omitempty"`
	Src    Source      `json:"-" yaml:"-"`
}

// ScenarioState is the lifecycle state of a started scenario.
type ScenarioState string

// Scenario states.
const (
	ScenarioRunning  ScenarioState = "running"
	ScenarioFinished ScenarioState = "finished" // its Duration has passed
	ScenarioStopped  ScenarioState = "stopped"  // stopped by StopScenario or Reset
)

const (
	scenarioRunning = ScenarioRunning
	scenarioStopped = ScenarioStopped

	maxScenarios       = 100 // running at once
	maxScenarioHistory = 100 // stopped ones remembered
	maxPhases          = 1000
	maxTargets         = 10_000
)

// ScenarioInfo describes a started scenario.
type ScenarioInfo struct {
	ID        string        `json:"id"`
	Name      string        `json:"name"`
	State     ScenarioState `json:"state"`
	StartedAt time.Time     `json:"started_at"`
	StoppedAt *time.Time    `json:"stopped_at,omitempty"`
	// Elapsed is the time since the start (until the stop), as a duration string.
	Elapsed Duration `json:"elapsed"`
	// Phase is the index of the latest phase that has begun, -1 before the first.
	Phase    int      `json:"phase"`
	Scenario Scenario `json:"scenario"`
}

type scenario struct {
	id      string
	def     Scenario
	start   time.Time
	state   ScenarioState
	stopped time.Time
	series  []*series
	bytes   int64 // scenarioBytes(&def), counted in Registry.usedBytes
}

// binding is a scenario's script for one series.
type binding struct {
	sc      *scenario
	entries []bindingEntry // sorted by at
}

type bindingEntry struct {
	at  time.Duration
	src Source
}

// offset returns the scenario time at now, and whether it is running then.
func (sc *scenario) offset(now time.Time) (time.Duration, bool) {
	if sc.state == scenarioStopped && !now.Before(sc.stopped) {
		return 0, false
	}
	e := now.Sub(sc.start)
	if e < 0 {
		return 0, false
	}
	if d := time.Duration(sc.def.Duration); d > 0 {
		if sc.def.Repeat {
			e %= d
		} else if e >= d {
			return 0, false
		}
	}
	return e, true
}

func (b *binding) at(now time.Time) (Source, time.Duration, bool) {
	e, ok := b.sc.offset(now)
	if !ok {
		return nil, 0, false
	}
	i := sort.Search(len(b.entries), func(i int) bool { return b.entries[i].at > e }) - 1
	if i < 0 {
		return nil, 0, false
	}
	return b.entries[i].src, e - b.entries[i].at, true
}

// ParseScenario reads a scenario from JSON (when the first non-space byte is
// '{') or YAML. Unknown fields are errors, so a typo does not silently do
// nothing; so are invalid UTF-8, lone surrogates (\ud800 in JSON), data
// after the JSON object or a second YAML document, and YAML numbers that
// are not decimal (0x10, 1_000, .inf). It checks the shape; the registry checks metrics and ranges when
// the scenario starts.
func ParseScenario(data []byte) (Scenario, error) {
	var sc Scenario
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return sc, validationf("scenario", "empty document")
	}
	if !utf8.Valid(trimmed) {
		return sc, validationf("scenario", "document is not valid UTF-8")
	}
	if trimmed[0] == '{' {
		if err := checkJSONText(trimmed); err != nil {
			return Scenario{}, &ValidationError{Field: "scenario", Reason: "malformed JSON: " + err.Error(), Err: err}
		}
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&sc); err != nil {
			return Scenario{}, &ValidationError{Field: "scenario", Reason: "malformed JSON: " + err.Error(), Err: err}
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			return Scenario{}, validationf("scenario", "trailing data after the JSON object")
		}
	} else {
		if err := decodeYAMLStrict(trimmed, &sc); err != nil {
			return Scenario{}, &ValidationError{Field: "scenario", Reason: "malformed YAML: " + err.Error(), Err: err}
		}
	}
	return sc, sc.validateShape()
}

func (sc *Scenario) validateShape() error {
	if sc.Name == "" || len(sc.Name) > 128 || !utf8.ValidString(sc.Name) || strings.ContainsFunc(sc.Name, isControl) {
		return validationf("name", "must be 1 to 128 bytes of UTF-8 without control characters")
	}
	if sc.Duration < 0 {
		return validationf("duration", "must not be negative")
	}
	if sc.Repeat && sc.Duration == 0 {
		return validationf("repeat", "needs a duration")
	}
	if len(sc.Phases) == 0 || len(sc.Phases) > maxPhases {
		return validationf("phases", "need 1 to %d phases", maxPhases)
	}
	n := 0
	for i, p := range sc.Phases {
		field := "phases[" + strconv.Itoa(i) + "]"
		if p.At < 0 || (sc.Duration > 0 && p.At >= sc.Duration) {
			return validationf(field+".at", "must be ≥ 0 and before the scenario's duration")
		}
		if len(p.Set) == 0 {
			return validationf(field+".set", "must name at least one series")
		}
		n += len(p.Set)
		if n > maxTargets {
			return validationf("phases", "at most %d targets in all", maxTargets)
		}
		for j, t := range p.Set {
			tf := field + ".set[" + strconv.Itoa(j) + "]"
			k := 0
			if t.Value != nil {
				k++
			}
			if t.Source != nil {
				k++
			}
			if t.Src != nil {
				k++
			}
			if k != 1 {
				return validationf(tf, "needs exactly one of value or source")
			}
		}
	}
	return nil
}

// StartScenario validates sc against the declared metrics and starts it at
// the registry's now. Series it names that do not exist yet are created;
// if they would exceed a budget of [Options] it fails with a *LimitError.
// On error nothing changes.
func (r *Registry) StartScenario(sc Scenario) (ScenarioInfo, error) {
	if err := sc.validateShape(); err != nil {
		return ScenarioInfo{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.retireFinishedLocked(r.now())
	running := 0
	for _, s := range r.scenarios {
		if s.state == scenarioRunning {
			running++
		}
	}
	if running >= maxScenarios {
		return ScenarioInfo{}, &LimitError{Limit: "scenarios running at once", Max: maxScenarios, Want: int64(running + 1), What: "number of running scenarios"}
	}

	type plan struct {
		f       *family
		vals    []string
		entries []bindingEntry
	}
	plans := map[string]*plan{}
	var keys []string
	for i, p := range sc.Phases {
		for j, t := range p.Set {
			field := fmt.Sprintf("phases[%d].set[%d]", i, j)
			f, vals, err := r.resolveLocked(t.Metric, t.Labels)
			if err != nil {
				return ScenarioInfo{}, fmt.Errorf("%s: %w", field, err)
			}
			src := t.Src
			switch {
			case t.Value != nil:
				rng := f.opts.Range
				if f.opts.Type == Counter {
					rng = NonNegative
				}
				if err := rng.check(*t.Value); err != nil {
					return ScenarioInfo{}, fmt.Errorf("%s: %w", field, err)
				}
				src = Constant(*t.Value)
			case t.Source != nil:
				if src, err = t.Source.Source(); err != nil {
					return ScenarioInfo{}, fmt.Errorf("%s: %w", field, err)
				}
			default:
				if v, ok := src.(Validator); ok {
					if err := v.Validate(); err != nil {
						return ScenarioInfo{}, fmt.Errorf("%s: %w", field, err)
					}
				}
			}
			if err := f.checkSource(src); err != nil {
				return ScenarioInfo{}, fmt.Errorf("%s: %w", field, err)
			}
			key := f.opts.Name + "\xfe" + seriesKey(vals)
			pl, ok := plans[key]
			if !ok {
				pl = &plan{f: f, vals: vals}
				plans[key] = pl
				keys = append(keys, key)
			}
			pl.entries = append(pl.entries, bindingEntry{at: time.Duration(p.At), src: src})
		}
	}
	var missing cost // of the series the scenario creates: checked before any
	for _, k := range keys {
		if _, ok := plans[k].f.series[seriesKey(plans[k].vals)]; !ok {
			missing = missing.plus(seriesCost(plans[k].f, plans[k].vals))
		}
	}
	scBytes := scenarioBytes(&sc)
	if err := r.admitLocked(missing.plus(cost{bytes: scBytes})); err != nil {
		return ScenarioInfo{}, err
	}

	now := r.now()
	r.nextScen++
	s := &scenario{id: "s" + strconv.Itoa(r.nextScen), def: cloneScenario(sc), start: now, state: scenarioRunning, bytes: scBytes}
	r.usedBytes += scBytes
	for _, k := range keys {
		pl := plans[k]
		se, err := r.seriesLocked(pl.f, pl.vals, now, true)
		if err != nil { // cannot happen: checked above
			return ScenarioInfo{}, err
		}
		se.integrate(now)
		sort.SliceStable(pl.entries, func(i, j int) bool { return pl.entries[i].at < pl.entries[j].at })
		se.bindings = append(se.bindings, &binding{sc: s, entries: pl.entries})
		s.series = append(s.series, se)
	}
	r.scenarios = append(r.scenarios, s)
	r.pruneScenariosLocked()
	r.log.Info("mockexporter: scenario started", "id", s.id, "name", sc.Name, "series", len(keys))
	return s.info(now), nil
}

// StopScenario stops a running scenario; the series it drove go back to their
// own sources. Stopping a finished or stopped scenario is not an error.
func (r *Registry) StopScenario(id string) (ScenarioInfo, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	for _, s := range r.scenarios {
		if s.id != id {
			continue
		}
		if s.state == scenarioRunning {
			for _, se := range s.series {
				se.integrate(now)
				se.bindings = slices.DeleteFunc(se.bindings, func(b *binding) bool { return b.sc == s })
			}
			s.state, s.stopped = scenarioStopped, now
			r.log.Info("mockexporter: scenario stopped", "id", s.id, "name", s.def.Name)
		}
		return s.info(now), nil
	}
	return ScenarioInfo{}, fmt.Errorf("%w: %q", ErrUnknownScenario, truncate(id))
}

// Scenarios lists started scenarios, oldest first (running ones and the
// latest stopped ones).
func (r *Registry) Scenarios() []ScenarioInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	out := make([]ScenarioInfo, 0, len(r.scenarios))
	for _, s := range r.scenarios {
		out = append(out, s.info(now))
	}
	return out
}

// Scenario returns one started scenario.
func (r *Registry) Scenario(id string) (ScenarioInfo, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.scenarios {
		if s.id == id {
			return s.info(r.now()), nil
		}
	}
	return ScenarioInfo{}, fmt.Errorf("%w: %q", ErrUnknownScenario, truncate(id))
}

// retireFinishedLocked marks the scenarios whose (non-repeating) duration
// has passed as finished and unbinds them from their series, so that they
// no longer count towards the running limit or cost time at every read.
func (r *Registry) retireFinishedLocked(now time.Time) {
	for _, s := range r.scenarios {
		d := time.Duration(s.def.Duration)
		if s.state != scenarioRunning || d <= 0 || s.def.Repeat || now.Sub(s.start) < d {
			continue
		}
		for _, se := range s.series {
			se.integrate(now) // counters take in what the scenario drove
			se.bindings = slices.DeleteFunc(se.bindings, func(b *binding) bool { return b.sc == s })
		}
		s.state, s.series = ScenarioFinished, nil
	}
}

func (r *Registry) pruneScenariosLocked() {
	stopped := 0
	for _, s := range r.scenarios {
		if s.state != scenarioRunning {
			stopped++
		}
	}
	if stopped <= maxScenarioHistory {
		return
	}
	drop := stopped - maxScenarioHistory
	r.scenarios = slices.DeleteFunc(r.scenarios, func(s *scenario) bool {
		if drop > 0 && s.state != scenarioRunning {
			drop--
			r.usedBytes -= s.bytes
			return true
		}
		return false
	})
}

func (s *scenario) info(now time.Time) ScenarioInfo {
	si := ScenarioInfo{ID: s.id, Name: s.def.Name, State: s.state, StartedAt: s.start, Phase: -1, Scenario: cloneScenario(s.def)}
	end := now
	if s.state == scenarioStopped {
		st := s.stopped
		si.StoppedAt = &st
		end = s.stopped
	}
	si.Elapsed = Duration(end.Sub(s.start))
	e := end.Sub(s.start)
	if d := time.Duration(s.def.Duration); d > 0 {
		if s.def.Repeat {
			e %= d
		} else if e >= d && s.state == scenarioRunning {
			si.State = ScenarioFinished
		}
	}
	for i, p := range s.def.Phases {
		if time.Duration(p.At) <= e && (si.Phase < 0 || p.At >= s.def.Phases[si.Phase].At) {
			si.Phase = i
		}
	}
	return si
}

func cloneScenario(sc Scenario) Scenario {
	out := sc
	out.Phases = make([]Phase, len(sc.Phases))
	for i, p := range sc.Phases {
		out.Phases[i] = Phase{At: p.At, Set: make([]Target, len(p.Set))}
		for j, t := range p.Set {
			t.Labels = cloneLabels(t.Labels)
			if t.Value != nil {
				v := *t.Value
				t.Value = &v
			}
			if t.Source != nil {
				spec := *t.Source
				t.Source = &spec
			}
			if t.Src != nil && t.Source == nil {
				spec := SpecOf(t.Src)
				t.Source = &spec
				t.Src = nil
			}
			out.Phases[i].Set[j] = t
		}
	}
	return out
}
