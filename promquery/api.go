package promquery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"time"

	"github.com/prometheus/common/model"
)

// getJSON runs a request whose answer's data is decoded with encoding/json
// into out (the metadata endpoints are small and rarely hot).
func (c *Client) getJSON(ctx context.Context, path string, params url.Values, queryLike bool, out any) (Meta, error) {
	var meta Meta
	err := c.do(ctx, path, params, queryLike, func(body io.Reader) error {
		env := struct {
			Status    string    `json:"status"`
			ErrorType ErrorType `json:"errorType"`
			Error     string    `json:"error"`
			Data      any       `json:"data"`
			Warnings  []string  `json:"warnings"`
			Infos     []string  `json:"infos"`
			IsPartial bool      `json:"isPartial"`
		}{Data: out}
		dec := json.NewDecoder(body)
		if err := dec.Decode(&env); err != nil {
			if errors.Is(err, ErrResponseTooLarge) {
				return err
			}
			return fmt.Errorf("%w: %w", ErrBadResponse, err)
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: data after the end of the answer", ErrBadResponse)
		}
		switch env.Status {
		case "success":
		case "error":
			return &APIError{Type: env.ErrorType, Message: env.Error, Warnings: env.Warnings, Infos: env.Infos}
		default:
			return fmt.Errorf("%w: status %q", ErrBadResponse, env.Status)
		}
		meta = Meta{Warnings: env.Warnings, Infos: env.Infos, Partial: env.IsPartial}
		return nil
	})
	return meta, err
}

func timeRange(v url.Values, start, end time.Time) {
	if !start.IsZero() {
		v.Set("start", formatTime(start))
	}
	if !end.IsZero() {
		v.Set("end", formatTime(end))
	}
}

func matchParams(matches []string) url.Values {
	v := url.Values{}
	for _, m := range matches {
		v.Add("match[]", m)
	}
	return v
}

// Series returns the label sets of the series that match any of the
// selectors in matches (at least one is required; build them with
// [Select]) between start and end. Zero times leave the bound to the
// server.
func (c *Client) Series(ctx context.Context, matches []string, start, end time.Time, opts ...QueryOption) ([]model.LabelSet, Meta, error) {
	if len(matches) == 0 {
		return nil, Meta{}, fmt.Errorf("%w: Series needs at least one selector", ErrInvalidArgument)
	}
	v := matchParams(matches)
	timeRange(v, start, end)
	applyOptions(v, opts)
	var out []model.LabelSet
	meta, err := c.getJSON(ctx, "/api/v1/series", v, true, &out)
	if err != nil {
		return nil, Meta{}, err
	}
	if out == nil {
		out = []model.LabelSet{}
	}
	return out, meta, nil
}

// LabelNames returns the label names present between start and end, in
// the series that match any of matches (all series when matches is empty).
func (c *Client) LabelNames(ctx context.Context, matches []string, start, end time.Time, opts ...QueryOption) ([]string, Meta, error) {
	v := matchParams(matches)
	timeRange(v, start, end)
	applyOptions(v, opts)
	var out []string
	meta, err := c.getJSON(ctx, "/api/v1/labels", v, true, &out)
	if err != nil {
		return nil, Meta{}, err
	}
	if out == nil {
		out = []string{}
	}
	return out, meta, nil
}

// LabelValues returns the values of the label name between start and end,
// in the series that match any of matches (all series when empty). Names
// outside the legacy character set are sent in Prometheus 3's U__ escaping.
func (c *Client) LabelValues(ctx context.Context, name string, matches []string, start, end time.Time, opts ...QueryOption) (model.LabelValues, Meta, error) {
	if name == "" {
		return nil, Meta{}, fmt.Errorf("%w: empty label name", ErrInvalidArgument)
	}
	v := matchParams(matches)
	timeRange(v, start, end)
	applyOptions(v, opts)
	// The escaped name holds only [A-Za-z0-9_], so it cannot alter the path.
	path := "/api/v1/label/" + model.EscapeName(name, model.ValueEncodingEscaping) + "/values"
	var out model.LabelValues
	meta, err := c.getJSON(ctx, path, v, false, &out)
	if err != nil {
		return nil, Meta{}, err
	}
	if out == nil {
		out = model.LabelValues{}
	}
	return out, meta, nil
}

// TargetState selects targets in [Client.Targets].
type TargetState string

// Target states understood by the targets endpoint.
const (
	TargetsAny     TargetState = "" // active and dropped
	TargetsActive  TargetState = "active"
	TargetsDropped TargetState = "dropped"
)

// TargetHealth is the last scrape outcome of an active target.
type TargetHealth string

// Health values Prometheus reports.
const (
	HealthUp      TargetHealth = "up"
	HealthDown    TargetHealth = "down"
	HealthUnknown TargetHealth = "unknown"
)

// ActiveTarget is a target Prometheus scrapes.
type ActiveTarget struct {
	DiscoveredLabels   model.LabelSet
	Labels             model.LabelSet
	ScrapePool         string
	ScrapeURL          string
	GlobalURL          string
	LastError          string
	LastScrape         time.Time
	LastScrapeDuration time.Duration
	Health             TargetHealth
	ScrapeInterval     string // as configured, e.g. "1s"; empty on old servers
	ScrapeTimeout      string
}

// DroppedTarget is a discovered target that relabelling dropped.
type DroppedTarget struct {
	DiscoveredLabels model.LabelSet
}

// Targets is the answer of [Client.Targets].
type Targets struct {
	Active  []ActiveTarget
	Dropped []DroppedTarget
}

type wireTarget struct {
	DiscoveredLabels   model.LabelSet `json:"discoveredLabels"`
	Labels             model.LabelSet `json:"labels"`
	ScrapePool         string         `json:"scrapePool"`
	ScrapeURL          string         `json:"scrapeUrl"`
	GlobalURL          string         `json:"globalUrl"`
	LastError          string         `json:"lastError"`
	LastScrape         time.Time      `json:"lastScrape"`
	LastScrapeDuration float64        `json:"lastScrapeDuration"`
	Health             TargetHealth   `json:"health"`
	ScrapeInterval     string         `json:"scrapeInterval"`
	ScrapeTimeout      string         `json:"scrapeTimeout"`
}

func seconds(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }

// Targets returns the scrape targets in the given state ([TargetsAny] for
// both active and dropped).
func (c *Client) Targets(ctx context.Context, state TargetState) (Targets, Meta, error) {
	v := url.Values{}
	switch state {
	case TargetsAny:
	case TargetsActive, TargetsDropped:
		v.Set("state", string(state))
	default:
		return Targets{}, Meta{}, fmt.Errorf("%w: target state %q", ErrInvalidArgument, state)
	}
	var w struct {
		Active  []wireTarget    `json:"activeTargets"`
		Dropped []DroppedTarget `json:"droppedTargets"`
	}
	meta, err := c.getJSON(ctx, "/api/v1/targets", v, false, &w)
	if err != nil {
		return Targets{}, Meta{}, err
	}
	out := Targets{Active: make([]ActiveTarget, len(w.Active)), Dropped: w.Dropped}
	for i, t := range w.Active {
		out.Active[i] = ActiveTarget{
			DiscoveredLabels: t.DiscoveredLabels, Labels: t.Labels, ScrapePool: t.ScrapePool,
			ScrapeURL: t.ScrapeURL, GlobalURL: t.GlobalURL, LastError: t.LastError,
			LastScrape: t.LastScrape, LastScrapeDuration: seconds(t.LastScrapeDuration),
			Health: t.Health, ScrapeInterval: t.ScrapeInterval, ScrapeTimeout: t.ScrapeTimeout,
		}
	}
	if out.Dropped == nil {
		out.Dropped = []DroppedTarget{}
	}
	return out, meta, nil
}

// AlertState is the state of an alert.
type AlertState string

// Alert states.
const (
	AlertFiring   AlertState = "firing"
	AlertPending  AlertState = "pending"
	AlertInactive AlertState = "inactive"
)

// Alert is an active (pending or firing) alert.
type Alert struct {
	Labels      model.LabelSet `json:"labels"`
	Annotations model.LabelSet `json:"annotations"`
	State       AlertState     `json:"state"`
	ActiveAt    time.Time      `json:"activeAt"`
	Value       string         `json:"value"` // the expression's value, as Prometheus formats it
}

// Alerts returns the active alerts of all alerting rules.
func (c *Client) Alerts(ctx context.Context) ([]Alert, Meta, error) {
	var w struct {
		Alerts []Alert `json:"alerts"`
	}
	meta, err := c.getJSON(ctx, "/api/v1/alerts", nil, false, &w)
	if err != nil {
		return nil, Meta{}, err
	}
	if w.Alerts == nil {
		w.Alerts = []Alert{}
	}
	return w.Alerts, meta, nil
}

// RuleHealth is the outcome of a rule's last evaluation.
type RuleHealth string

// Rule health values.
const (
	RuleOK      RuleHealth = "ok"
	RuleErr     RuleHealth = "err"
	RuleUnknown RuleHealth = "unknown"
)

// AlertingRule is an alerting rule with its current alerts.
type AlertingRule struct {
	Name           string
	Query          string
	For            time.Duration
	Labels         model.LabelSet
	Annotations    model.LabelSet
	Alerts         []Alert
	State          AlertState // the most advanced state of its alerts
	Health         RuleHealth
	LastError      string
	LastEvaluation time.Time
	EvaluationTime time.Duration
}

// RecordingRule is a recording rule.
type RecordingRule struct {
	Name           string
	Query          string
	Labels         model.LabelSet
	Health         RuleHealth
	LastError      string
	LastEvaluation time.Time
	EvaluationTime time.Duration
}

// RuleGroup is a group of rules from one rule file. Alerting and recording
// rules are kept apart, each in file order.
type RuleGroup struct {
	Name           string
	File           string
	Interval       time.Duration
	AlertingRules  []AlertingRule
	RecordingRules []RecordingRule
	LastEvaluation time.Time
	EvaluationTime time.Duration
}

type wireRule struct {
	Type           string         `json:"type"`
	Name           string         `json:"name"`
	Query          string         `json:"query"`
	Duration       float64        `json:"duration"`
	Labels         model.LabelSet `json:"labels"`
	Annotations    model.LabelSet `json:"annotations"`
	Alerts         []Alert        `json:"alerts"`
	State          AlertState     `json:"state"`
	Health         RuleHealth     `json:"health"`
	LastError      string         `json:"lastError"`
	LastEvaluation time.Time      `json:"lastEvaluation"`
	EvaluationTime float64        `json:"evaluationTime"`
}

// Rules returns the rule groups loaded by the server.
func (c *Client) Rules(ctx context.Context) ([]RuleGroup, Meta, error) {
	var w struct {
		Groups []struct {
			Name           string     `json:"name"`
			File           string     `json:"file"`
			Interval       float64    `json:"interval"`
			Rules          []wireRule `json:"rules"`
			LastEvaluation time.Time  `json:"lastEvaluation"`
			EvaluationTime float64    `json:"evaluationTime"`
		} `json:"groups"`
	}
	meta, err := c.getJSON(ctx, "/api/v1/rules", nil, false, &w)
	if err != nil {
		return nil, Meta{}, err
	}
	out := make([]RuleGroup, 0, len(w.Groups))
	for _, g := range w.Groups {
		rg := RuleGroup{
			Name: g.Name, File: g.File, Interval: seconds(g.Interval),
			LastEvaluation: g.LastEvaluation, EvaluationTime: seconds(g.EvaluationTime),
			AlertingRules: []AlertingRule{}, RecordingRules: []RecordingRule{},
		}
		for _, r := range g.Rules {
			switch r.Type {
			case "alerting":
				if r.Alerts == nil {
					r.Alerts = []Alert{}
				}
				rg.AlertingRules = append(rg.AlertingRules, AlertingRule{
					Name: r.Name, Query: r.Query, For: seconds(r.Duration), Labels: r.Labels,
					Annotations: r.Annotations, Alerts: r.Alerts, State: r.State, Health: r.Health,
					LastError: r.LastError, LastEvaluation: r.LastEvaluation, EvaluationTime: seconds(r.EvaluationTime),
				})
			case "recording":
				rg.RecordingRules = append(rg.RecordingRules, RecordingRule{
					Name: r.Name, Query: r.Query, Labels: r.Labels, Health: r.Health,
					LastError: r.LastError, LastEvaluation: r.LastEvaluation, EvaluationTime: seconds(r.EvaluationTime),
				})
			default:
				return nil, Meta{}, fmt.Errorf("%w: rule %q has unknown type %q", ErrBadResponse, r.Name, r.Type)
			}
		}
		out = append(out, rg)
	}
	return out, meta, nil
}

// Healthy checks /-/healthy: nil when the server answers 200, else an
// error (an *APIError for a non-2xx answer).
func (c *Client) Healthy(ctx context.Context) error {
	return c.probe(ctx, "/-/healthy")
}

// Ready checks /-/ready: nil when the server is ready to serve queries
// (200), else an error (an *APIError with status 503 while starting up).
func (c *Client) Ready(ctx context.Context) error {
	return c.probe(ctx, "/-/ready")
}

func (c *Client) probe(ctx context.Context, path string) error {
	return c.do(ctx, path, nil, false, func(body io.Reader) error {
		_, err := io.Copy(io.Discard, io.LimitReader(body, maxErrorBody))
		return err
	})
}
