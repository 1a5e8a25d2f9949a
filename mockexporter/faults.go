package mockexporter

import (
	"fmt"
	"slices"
	"time"
)

// Faults are failures of /metrics a test can switch on. The zero value is no
// fault.
type Faults struct {
	// Status, when non-zero (400–599), makes /metrics answer that status
	// instead of the exposition.
	Status int `json:"status,omitempty"`
	// Delay makes /metrics wait this long (at most MaxFaultDelay, or until
	// the request is cancelled) before answering.
	Delay Duration `json:"delay,omitempty"`
	// Hide removes series from every collection (so Prometheus marks them
	// stale and absent() fires): a SeriesRef without labels hides the whole
	// family, with labels every series whose labels include them.
	Hide []SeriesRef `json:"hide,omitempty"`
}

// SeriesRef selects series of one family by a subset of their labels.
type SeriesRef struct {
	Metric string `json:"metric"`
	Labels Labels `json:"labels,omitempty"`
}

// MaxFaultDelay is the longest accepted Faults.Delay.
const MaxFaultDelay = 5 * time.Minute

type hideRule struct {
	all      bool
	matchers []Labels
}

// SetFaults replaces the current faults. A *ValidationError or
// ErrUnknownMetric leaves them unchanged.
func (r *Registry) SetFaults(f Faults) error {
	if f.Status != 0 && (f.Status < 400 || f.Status > 599) {
		return validationf("status", "must be 0 (off) or 400–599, got %d", f.Status)
	}
	if f.Delay < 0 || time.Duration(f.Delay) > MaxFaultDelay {
		return validationf("delay", "must be between 0 and %v", MaxFaultDelay)
	}
	if len(f.Hide) > 1000 {
		return validationf("hide", "at most 1000 entries")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	rules := map[*family]*hideRule{}
	for i, ref := range f.Hide {
		fam, ok := r.fams[ref.Metric]
		if !ok {
			return fmt.Errorf("hide[%d]: %w: %q", i, ErrUnknownMetric, truncate(ref.Metric))
		}
		for k, v := range ref.Labels {
			if !slices.Contains(fam.opts.LabelNames, k) {
				return validationf(fmt.Sprintf("hide[%d].labels", i), "%q is not a label of %s", truncate(k), ref.Metric)
			}
			if err := checkLabelValue(k, v, r.opts.MaxLabelValueBytes); err != nil {
				return err
			}
		}
		rule := rules[fam]
		if rule == nil {
			rule = &hideRule{}
			rules[fam] = rule
		}
		if len(ref.Labels) == 0 {
			rule.all = true
		} else {
			rule.matchers = append(rule.matchers, cloneLabels(ref.Labels))
		}
	}
	cp := Faults{Status: f.Status, Delay: f.Delay}
	for _, ref := range f.Hide {
		cp.Hide = append(cp.Hide, SeriesRef{Metric: ref.Metric, Labels: cloneLabels(ref.Labels)})
	}
	r.faults = cp
	r.hideFam = rules
	if len(rules) == 0 {
		r.hideFam = nil
	}
	return nil
}

// Faults returns the current faults.
func (r *Registry) Faults() Faults {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := Faults{Status: r.faults.Status, Delay: r.faults.Delay}
	for _, ref := range r.faults.Hide {
		out.Hide = append(out.Hide, SeriesRef{Metric: ref.Metric, Labels: cloneLabels(ref.Labels)})
	}
	return out
}
