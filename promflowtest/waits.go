package promflowtest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/promflow/promflow/incidents"
	"github.com/promflow/promflow/promquery"
)

// DefaultWaitTimeout bounds the waits of [WaitContext] and [Suite].
const DefaultWaitTimeout = 60 * time.Second

// pollInterval is how often the waits of this file ask again.
const pollInterval = 100 * time.Millisecond

// ErrWaitTimeout is wrapped by every wait of this package that gave up; the
// error's text says what the wait last saw.
var ErrWaitTimeout = errors.New("promflowtest: wait timed out")

// Labels selects alerts and samples: a label set matches when it has every
// label of Labels with the same value. The empty Labels matches everything.
type Labels map[string]string

// Matches reports whether set has every label of l with the same value.
func (l Labels) Matches(set map[string]string) bool {
	for k, v := range l {
		if set[k] != v {
			return false
		}
	}
	return true
}

// String renders the labels sorted, as {a="1", b="2"}.
func (l Labels) String() string {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%q", k, l[k])
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func fromLabelSet(ls model.LabelSet) Labels {
	l := make(Labels, len(ls))
	for k, v := range ls {
		l[string(k)] = string(v)
	}
	return l
}

// WaitContext returns a context for the waits of a test: it ends after
// [DefaultWaitTimeout], or when the test ends.
func WaitContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), DefaultWaitTimeout)
	t.Cleanup(cancel)
	return ctx
}

// poll calls try every pollInterval until it returns done or ctx ends; then
// it returns an error wrapping ErrWaitTimeout and ctx's error that names
// what and the last thing try saw (its last message).
func poll(ctx context.Context, what string, try func() (done bool, last string)) error {
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	lastSeen := "nothing yet"
	for {
		done, last := try()
		if done {
			return nil
		}
		if ctx.Err() == nil && last != "" {
			lastSeen = last
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %s: %w; last seen: %s", ErrWaitTimeout, what, ctx.Err(), lastSeen)
		case <-tick.C:
		}
	}
}

// WaitQuery runs the instant query until its vector satisfies cond (nil
// cond: at least one sample) and returns that vector. A query Prometheus
// rejects fails at once; on timeout the error shows the last vector.
func WaitQuery(ctx context.Context, c *promquery.Client, query string, cond func(model.Vector) bool) (model.Vector, error) {
	if cond == nil {
		cond = func(v model.Vector) bool { return len(v) > 0 }
	}
	var last model.Vector
	v, err := c.WaitForValue(ctx, query, func(v model.Vector) bool {
		last = v
		return cond(v)
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w: %w; last vector: %s", ErrWaitTimeout, err, describeVector(last))
		}
		return nil, err
	}
	return v, nil
}

func describeVector(v model.Vector) string {
	if len(v) == 0 {
		return "empty"
	}
	parts := make([]string, 0, len(v))
	for _, s := range v {
		parts = append(parts, s.Metric.String()+" "+s.Value.String())
	}
	return strings.Join(parts, ", ")
}

// WaitAlertFiring waits until Prometheus has a firing alert whose labels
// include match (e.g. Labels{"alertname": "HighCPU"}) and returns it. On
// timeout the error lists the active alerts Prometheus had.
func WaitAlertFiring(ctx context.Context, c *promquery.Client, match Labels) (promquery.Alert, error) {
	var found promquery.Alert
	err := poll(ctx, "firing alert "+match.String()+" in Prometheus", func() (bool, string) {
		alerts, _, err := c.Alerts(ctx)
		if err != nil {
			return false, err.Error()
		}
		for _, a := range alerts {
			if a.State == promquery.AlertFiring && match.Matches(fromLabelSet(a.Labels)) {
				found = a
				return true, ""
			}
		}
		return false, describeAlerts(alerts)
	})
	return found, err
}

// WaitAlertResolved waits until Prometheus has no pending or firing alert
// whose labels include match.
func WaitAlertResolved(ctx context.Context, c *promquery.Client, match Labels) error {
	return poll(ctx, "alert "+match.String()+" resolved in Prometheus", func() (bool, string) {
		alerts, _, err := c.Alerts(ctx)
		if err != nil {
			return false, err.Error()
		}
		for _, a := range alerts {
			if match.Matches(fromLabelSet(a.Labels)) {
				return false, describeAlerts(alerts)
			}
		}
		return true, ""
	})
}

func describeAlerts(alerts []promquery.Alert) string {
	if len(alerts) == 0 {
		return "no active alerts"
	}
	parts := make([]string, 0, len(alerts))
	for _, a := range alerts {
		parts = append(parts, fmt.Sprintf("%s %s", a.State, fromLabelSet(a.Labels)))
	}
	return strings.Join(parts, "; ")
}

// AlertmanagerAlert is one alert of Alertmanager's /api/v2/alerts.
type AlertmanagerAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	UpdatedAt    time.Time         `json:"updatedAt"`
	Fingerprint  string            `json:"fingerprint"`
	GeneratorURL string            `json:"generatorURL"`
	Receivers    []struct {
		Name string `json:"name"`
	} `json:"receivers"`
	Status struct {
		// State is "active", "suppressed" (inhibited or silenced) or
		// "unprocessed".
		State       string   `json:"state"`
		InhibitedBy []string `json:"inhibitedBy"`
		SilencedBy  []string `json:"silencedBy"`
	} `json:"status"`
}

// ReceiverNames are the names of the receivers the alert is routed to.
func (a AlertmanagerAlert) ReceiverNames() []string {
	names := make([]string, len(a.Receivers))
	for i, r := range a.Receivers {
		names[i] = r.Name
	}
	return names
}

// AlertmanagerAlerts returns the alerts Alertmanager at baseURL holds (not
// resolved ones), active, inhibited and silenced alike.
func AlertmanagerAlerts(ctx context.Context, baseURL string) ([]AlertmanagerAlert, error) {
	var alerts []AlertmanagerAlert
	if err := amDo(ctx, http.MethodGet, strings.TrimRight(baseURL, "/")+"/api/v2/alerts", nil, &alerts); err != nil {
		return nil, err
	}
	return alerts, nil
}

// WaitAlertmanagerAlert waits until Alertmanager at baseURL holds an alert
// whose labels include match, in the given state ("active", "suppressed",
// or "" for any), and returns it. On timeout the error lists its alerts.
func WaitAlertmanagerAlert(ctx context.Context, baseURL string, match Labels, state string) (AlertmanagerAlert, error) {
	var found AlertmanagerAlert
	what := fmt.Sprintf("alert %s in state %q in Alertmanager", match, state)
	err := poll(ctx, what, func() (bool, string) {
		alerts, err := AlertmanagerAlerts(ctx, baseURL)
		if err != nil {
			return false, err.Error()
		}
		for _, a := range alerts {
			if (state == "" || a.Status.State == state) && match.Matches(a.Labels) {
				found = a
				return true, ""
			}
		}
		return false, describeAMAlerts(alerts)
	})
	return found, err
}

// WaitAlertmanagerAlertResolved waits until Alertmanager at baseURL holds
// no unresolved alert whose labels include match.
func WaitAlertmanagerAlertResolved(ctx context.Context, baseURL string, match Labels) error {
	return poll(ctx, "alert "+match.String()+" resolved in Alertmanager", func() (bool, string) {
		alerts, err := AlertmanagerAlerts(ctx, baseURL)
		if err != nil {
			return false, err.Error()
		}
		for _, a := range alerts {
			if match.Matches(a.Labels) {
				return false, describeAMAlerts(alerts)
			}
		}
		return true, ""
	})
}

func describeAMAlerts(alerts []AlertmanagerAlert) string {
	if len(alerts) == 0 {
		return "no alerts"
	}
	parts := make([]string, 0, len(alerts))
	for _, a := range alerts {
		parts = append(parts, fmt.Sprintf("%s %s → %v", a.Status.State, Labels(a.Labels), a.ReceiverNames()))
	}
	return strings.Join(parts, "; ")
}

// WaitIncident waits until the store holds an incident (not closed) for
// which match returns true, and returns it. On timeout the error lists the
// newest incidents.
func WaitIncident(ctx context.Context, store *incidents.Store, match func(incidents.Incident) bool) (incidents.Incident, error) {
	var found incidents.Incident
	err := poll(ctx, "a matching incident", func() (bool, string) {
		page, err := store.Details(ctx, incidents.DetailsQuery{Limit: 100})
		if err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, d := range page.Items {
			inc, err := store.Get(ctx, d.ID)
			if err != nil {
				return false, err.Error()
			}
			if match(inc) {
				found = inc
				return true, ""
			}
			seen = append(seen, describeIncident(inc))
		}
		if len(seen) == 0 {
			return false, "no incidents"
		}
		return false, strings.Join(seen, "; ")
	})
	return found, err
}

func describeIncident(inc incidents.Incident) string {
	return fmt.Sprintf("%s %s source=%q %q", inc.ID, inc.Status, inc.Source, inc.Title)
}

// WaitIncidentOpened waits until an open incident of the service (its
// source) exists and returns it; the empty service accepts any.
func WaitIncidentOpened(ctx context.Context, store *incidents.Store, service string) (incidents.Incident, error) {
	return WaitIncident(ctx, store, func(inc incidents.Incident) bool {
		return inc.Status == incidents.StatusOpen && (service == "" || inc.Source == service)
	})
}

// WaitIncidentResolved waits until the incident id is resolved and returns
// it. On timeout the error gives its last status.
func WaitIncidentResolved(ctx context.Context, store *incidents.Store, id string) (incidents.Incident, error) {
	var inc incidents.Incident
	err := poll(ctx, "incident "+id+" resolved", func() (bool, string) {
		var err error
		if inc, err = store.Get(ctx, id); err != nil {
			return false, err.Error()
		}
		return inc.Status == incidents.StatusResolved, describeIncident(inc)
	})
	return inc, err
}
