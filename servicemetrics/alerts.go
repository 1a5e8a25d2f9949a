package servicemetrics

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/common/model"

	"github.com/promflow/promflow/promquery"
)

// AlertSource is what the [AlertsPoller] asks Prometheus.
// *promquery.Client satisfies it.
type AlertSource interface {
	Alerts(ctx context.Context) ([]promquery.Alert, promquery.Meta, error)
	Rules(ctx context.Context) ([]promquery.RuleGroup, promquery.Meta, error)
}

var _ AlertSource = (*promquery.Client)(nil)

// IncidentRef names the incident a firing alert opened.
type IncidentRef struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

// IncidentLinker returns the incident of each alert fingerprint that has
// one (the newest firing episode's), keyed by fingerprint.
type IncidentLinker func(ctx context.Context, fingerprints []string) (map[string]IncidentRef, error)

// FiringAlert is one firing alert of the alerts message.
type FiringAlert struct {
	Name        string         `json:"name"` // the alertname label
	Labels      model.LabelSet `json:"labels"`
	Annotations model.LabelSet `json:"annotations"`
	ActiveAt    time.Time      `json:"active_at"`
	Value       string         `json:"value"` // the expression's value, in plain notation (96, not 9.6e+01)
	// Fingerprint is the hash of Labels as Alertmanager computes it
	// (model.LabelSet.Fingerprint): the incident's fingerprint when
	// Alertmanager adds no external labels.
	Fingerprint string `json:"fingerprint"`
	// Incident is the incident the alert opened; nil while there is none
	// (Alertmanager has not notified yet) or without a linker.
	Incident *IncidentRef `json:"incident"`
}

// AlertsData is the "data" of the alerts message.
type AlertsData struct {
	// Alerts are the firing alerts, by name then fingerprint.
	Alerts []FiringAlert `json:"alerts"`
	// Pending counts the alerts whose rule matches but whose "for" has
	// not elapsed yet.
	Pending int `json:"pending"`
	// Thresholds of the alerting rules whose expression is a simple
	// comparison (see ParseThreshold), by alert name. The last ones read
	// are kept while the rules cannot be read.
	Thresholds []Threshold `json:"thresholds"`
	// Error says why the alerts could not be read this poll (then Alerts
	// is empty); RulesError and LinkError likewise for the rules and the
	// incidents. They name the failure, never addresses or credentials.
	Error      string `json:"error,omitempty"`
	RulesError string `json:"rules_error,omitempty"`
	LinkError  string `json:"link_error,omitempty"`
}

// AlertsMessage is what clients receive on topic alerts.
type AlertsMessage struct {
	Type      string     `json:"type"`
	Timestamp string     `json:"timestamp"`
	Data      AlertsData `json:"data"`
}

// AlertsOptions configures an [AlertsPoller]. The zero value works.
type AlertsOptions struct {
	// Interval between polls; default DefaultPollInterval.
	Interval time.Duration
	// Timeout bounds each poll; default Interval.
	Timeout time.Duration
	// Topic is the (snapshot) topic and the messages' "type"; default
	// TopicAlerts.
	Topic string
	// Link links alerts to incidents; nil publishes no incidents.
	Link IncidentLinker
	// Logger receives poll errors; default slog.Default().
	Logger *slog.Logger
}

// AlertsPoller publishes Prometheus' firing alerts, linked to their
// incidents, and the thresholds of its alerting rules on one snapshot
// topic: it reads them every Interval and publishes when they differ from
// what it published last (the topic keeps that for clients that connect
// later), so an unchanged state costs its clients nothing.
type AlertsPoller struct {
	src  AlertSource
	pub  Publisher
	opts AlertsOptions

	mu         sync.Mutex // one poll at a time; guards thresholds and last
	thresholds []Threshold
	last       []byte // the data of the last message published
	now        func() time.Time
}

// NewAlertsPoller returns a poller of src publishing to pub. It starts
// nothing: call Run.
func NewAlertsPoller(src AlertSource, pub Publisher, opts AlertsOptions) (*AlertsPoller, error) {
	if src == nil || pub == nil {
		return nil, errors.New("servicemetrics: NewAlertsPoller needs an AlertSource and a Publisher")
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultPollInterval
	}
	if opts.Timeout <= 0 {
		opts.Timeout = opts.Interval
	}
	if opts.Topic == "" {
		opts.Topic = TopicAlerts
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &AlertsPoller{src: src, pub: pub, opts: opts, thresholds: []Threshold{}, now: time.Now}, nil
}

// Run polls at once and then every Interval until ctx ends, and returns
// ctx's error.
func (p *AlertsPoller) Run(ctx context.Context) error {
	t := time.NewTicker(p.opts.Interval)
	defer t.Stop()
	for {
		if err := p.Poll(ctx); err != nil && ctx.Err() == nil {
			p.opts.Logger.Warn("servicemetrics: publish alerts", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Poll reads the alerts and rules once and publishes the message. Read
// failures are part of the message; the returned error only reports a
// failure to publish.
func (p *AlertsPoller) Poll(parent context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	ctx, cancel := context.WithTimeout(parent, p.opts.Timeout)
	defer cancel()
	data := AlertsData{Alerts: []FiringAlert{}}
	var alerts []promquery.Alert
	var alertsErr, rulesErr error
	var groups []promquery.RuleGroup
	var wg sync.WaitGroup
	wg.Go(func() { alerts, _, alertsErr = p.src.Alerts(ctx) })
	wg.Go(func() { groups, _, rulesErr = p.src.Rules(ctx) })
	wg.Wait()
	if parent.Err() != nil {
		return parent.Err() // abandoned: nothing half-read is published
	}
	if alertsErr != nil {
		data.Error = describePromError(alertsErr)
		p.opts.Logger.Warn("servicemetrics: read alerts", "err", alertsErr)
	}
	if rulesErr != nil {
		data.RulesError = describePromError(rulesErr)
	} else {
		p.thresholds = thresholds(groups)
	}
	data.Thresholds = p.thresholds
	data.Alerts, data.Pending = firing(alerts)
	if p.opts.Link != nil && len(data.Alerts) > 0 {
		if err := p.link(ctx, data.Alerts); err != nil {
			data.LinkError = "incidents unavailable"
			p.opts.Logger.Warn("servicemetrics: link alerts to incidents", "err", err)
		}
	}
	db, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("servicemetrics: encode alerts: %w", err)
	}
	if p.last != nil && bytes.Equal(db, p.last) {
		return nil
	}
	// AlertsMessage's shape, with the data encoded above.
	b, err := json.Marshal(struct {
		Type      string          `json:"type"`
		Timestamp string          `json:"timestamp"`
		Data      json.RawMessage `json:"data"`
	}{p.opts.Topic, isoTime(p.now()), db})
	if err != nil {
		return fmt.Errorf("servicemetrics: encode alerts: %w", err)
	}
	if err := p.pub.PublishRaw(p.opts.Topic, b); err != nil {
		return err
	}
	p.last = db
	return nil
}

func (p *AlertsPoller) link(ctx context.Context, alerts []FiringAlert) error {
	fps := make([]string, len(alerts))
	for i, a := range alerts {
		fps[i] = a.Fingerprint
	}
	refs, err := p.opts.Link(ctx, fps)
	if err != nil {
		return err
	}
	for i := range alerts {
		if r, ok := refs[alerts[i].Fingerprint]; ok {
			alerts[i].Incident = &r
		}
	}
	return nil
}

// firing returns the firing alerts, sorted, and how many are pending.
func firing(alerts []promquery.Alert) ([]FiringAlert, int) {
	out := []FiringAlert{}
	pending := 0
	for _, a := range alerts {
		switch a.State {
		case promquery.AlertFiring:
		case promquery.AlertPending:
			pending++
			continue
		default:
			continue
		}
		out = append(out, FiringAlert{
			Name: string(a.Labels[model.AlertNameLabel]), Labels: a.Labels, Annotations: a.Annotations,
			ActiveAt: a.ActiveAt, Value: plainNumber(a.Value), Fingerprint: a.Labels.Fingerprint().String(),
		})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Fingerprint < out[j].Fingerprint
	})
	return out, pending
}

// plainNumber writes Prometheus' alert value ("9.6e+01") as 96.
func plainNumber(v string) string {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return v
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// thresholds parses the alerting rules' expressions.
func thresholds(groups []promquery.RuleGroup) []Threshold {
	out := []Threshold{}
	for _, g := range groups {
		for _, r := range g.AlertingRules {
			if th, ok := ParseThreshold(r.Query); ok {
				th.Alert = r.Name
				out = append(out, th)
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Alert < out[j].Alert })
	return out
}

// describePromError names a Prometheus failure without addresses.
func describePromError(err error) string {
	var apiErr *promquery.APIError
	switch {
	case errors.As(err, &apiErr):
		return fmt.Sprintf("Prometheus answered %d %s", apiErr.StatusCode, http.StatusText(apiErr.StatusCode))
	case errors.Is(err, context.DeadlineExceeded):
		return "Prometheus timed out"
	}
	return "Prometheus unreachable"
}
