package incidents

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/common/model"
)

// WebhookMessage is the body Alertmanager posts to a webhook receiver
// (payload version 4).
type WebhookMessage struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []WebhookAlert    `json:"alerts"`
}

// WebhookAlert is one alert of a [WebhookMessage].
type WebhookAlert struct {
	Status       string            `json:"status"` // "firing" or "resolved"
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// IntakeOptions maps alerts to incidents. The zero value works: service from
// the label "service" (else "job", else "instance", else "unknown"), title
// from the annotation "summary" (else the label "alertname"), severity from
// the label "severity" (else "warning"), description from the annotation
// "description".
type IntakeOptions struct {
	// ServiceLabels are tried in order; the first non-empty one is the
	// incident's source.
	ServiceLabels  []string
	DefaultService string
	// TitleAnnotation is tried first, then the alertname label.
	TitleAnnotation       string
	SeverityLabel         string
	DefaultSeverity       string
	DescriptionAnnotation string
	// MaxBodyBytes limits a webhook body; default 4 MiB. Larger bodies get 413.
	MaxBodyBytes int64
	// ReadOnly makes [NewWebhookHandler] answer every POST with 503
	// {"status":"error","error":"read-only: ..."} (see [HandlerOptions].ReadOnly).
	// Store.Ingest ignores it.
	ReadOnly bool
}

func (o IntakeOptions) withDefaults() IntakeOptions {
	if len(o.ServiceLabels) == 0 {
		o.ServiceLabels = []string{"service", "job", "instance"}
	}
	if o.DefaultService == "" {
		o.DefaultService = "unknown"
	}
	if o.TitleAnnotation == "" {
		o.TitleAnnotation = "summary"
	}
	if o.SeverityLabel == "" {
		o.SeverityLabel = "severity"
	}
	if o.DefaultSeverity == "" {
		o.DefaultSeverity = "warning"
	}
	if o.DescriptionAnnotation == "" {
		o.DescriptionAnnotation = "description"
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 4 << 20
	}
	return o
}

// IngestResult says what a webhook message did.
type IngestResult struct {
	Opened   int `json:"opened"`
	Resolved int `json:"resolved"`
	// Ignored counts resolved alerts with no open incident for their firing
	// episode (already resolved, or never seen firing).
	Ignored int `json:"ignored"`
}

// clip makes v storable: no NUL bytes, at most max bytes, cut on a rune boundary.
func clip(v string, max int) string {
	v = strings.ReplaceAll(v, "\x00", "")
	if !utf8.ValidString(v) {
		v = strings.ToValidUTF8(v, "\uFFFD")
	}
	if len(v) <= max {
		return v
	}
	for max > 0 && !utf8.RuneStart(v[max]) {
		max--
	}
	return v[:max]
}

// Ingest applies an Alertmanager webhook message: each firing alert opens an
// incident for its firing episode (fingerprint and startsAt) unless one
// exists, so repeated notifications open nothing new; each resolved alert
// resolves the unresolved incident of its episode. The whole message is
// checked before anything is written; then each alert is applied by one
// idempotent statement, so a message that fails half way (the error is
// returned with what was done so far) is completed by a redelivery, as
// Alertmanager retries failed notifications.
func (s *Store) Ingest(ctx context.Context, msg WebhookMessage, opts IntakeOptions) (IngestResult, error) {
	opts = opts.withDefaults()
	if msg.Version != "4" {
		return IngestResult{}, invalid("version", "unsupported webhook payload version %q, want \"4\"", truncate(msg.Version, 20))
	}
	type item struct {
		firing             bool
		fp                 string
		startsAt, endsAt   time.Time
		title, sev, source string
		desc               string
		labels             []byte
	}
	items := make([]item, 0, len(msg.Alerts))
	for i, a := range msg.Alerts {
		it := item{startsAt: a.StartsAt, endsAt: a.EndsAt}
		switch a.Status {
		case "firing":
			it.firing = true
		case "resolved":
		default:
			return IngestResult{}, invalid(fmt.Sprintf("alerts[%d].status", i), "must be firing or resolved")
		}
		if a.StartsAt.IsZero() {
			return IngestResult{}, invalid(fmt.Sprintf("alerts[%d].startsAt", i), "is required")
		}
		it.fp = clip(a.Fingerprint, maxShortLen)
		if it.fp == "" {
			ls := make(model.LabelSet, len(a.Labels))
			for k, v := range a.Labels {
				ls[model.LabelName(k)] = model.LabelValue(v)
			}
			it.fp = ls.Fingerprint().String()
		}
		if it.firing {
			it.title = clip(a.Annotations[opts.TitleAnnotation], maxTitleLen)
			if strings.TrimSpace(it.title) == "" {
				it.title = clip(a.Labels["alertname"], maxTitleLen)
			}
			if strings.TrimSpace(it.title) == "" {
				it.title = "alert " + it.fp
			}
			it.sev = clip(a.Labels[opts.SeverityLabel], maxShortLen)
			if strings.TrimSpace(it.sev) == "" {
				it.sev = opts.DefaultSeverity
			}
			for _, l := range opts.ServiceLabels {
				if v := clip(a.Labels[l], maxShortLen); strings.TrimSpace(v) != "" {
					it.source = v
					break
				}
			}
			if it.source == "" {
				it.source = opts.DefaultService
			}
			it.desc = clip(a.Annotations[opts.DescriptionAnnotation], maxDescriptionLen)
			labels := make(map[string]string, len(a.Labels))
			for k, v := range a.Labels {
				labels[clip(k, maxShortLen)] = clip(v, maxLabelValueLen)
			}
			b, err := json.Marshal(labels)
			if err != nil {
				return IngestResult{}, invalid(fmt.Sprintf("alerts[%d].labels", i), "%v", err)
			}
			it.labels = b
		}
		items = append(items, it)
	}

	// Each alert is its own single-statement transaction, not one
	// transaction for the message: a transaction writing several incidents
	// would hold several services' rollup rows at once and could deadlock
	// with a concurrent one (or with a lifecycle call) taking them in
	// another order. Every statement is idempotent — a firing episode is
	// inserted at most once, a resolve only matches an unresolved incident —
	// so when a failure leaves a message half applied, Alertmanager's retry
	// of the whole message completes it without duplicates.
	var res IngestResult
	now := s.now()
	for _, it := range items {
		if it.firing {
			tag, err := s.pool.Exec(ctx, `INSERT INTO incidents
				(title, severity, source, description, status, labels, created_at, updated_at, fingerprint, starts_at)
				VALUES ($1, $2, $3, $4, 'open', $5, $6, $6, $7, $8)
				ON CONFLICT (fingerprint, starts_at) WHERE fingerprint IS NOT NULL DO NOTHING`,
				it.title, it.sev, it.source, it.desc, string(it.labels), now, it.fp, it.startsAt)
			if err != nil {
				return res, fmt.Errorf("incidents: ingest: %w", classify(err))
			}
			res.Opened += int(tag.RowsAffected())
			continue
		}
		end := it.endsAt
		if end.IsZero() || end.After(now) {
			end = now
		}
		tag, err := s.pool.Exec(ctx, `UPDATE incidents SET status = 'resolved',
			resolved_at = greatest(created_at, $3), updated_at = greatest(updated_at, $4)
			WHERE fingerprint = $1 AND starts_at = $2 AND status IN ('open', 'acknowledged')`,
			it.fp, it.startsAt, end, now)
		if err != nil {
			return res, fmt.Errorf("incidents: ingest: %w", classify(err))
		}
		if tag.RowsAffected() > 0 {
			res.Resolved += int(tag.RowsAffected())
		} else {
			res.Ignored++
		}
	}
	return res, nil
}
