package incidents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
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
// the label "severity" when it is one of [Severities] in any case (else
// DefaultSeverity, "warning"), description from the annotation
// "description".
type IntakeOptions struct {
	// ServiceLabels are tried in order; the first non-empty one is the
	// incident's source.
	ServiceLabels  []string
	DefaultService string
	// TitleAnnotation is tried first, then the alertname label.
	TitleAnnotation string
	SeverityLabel   string
	// DefaultSeverity is used when the severity label is missing or not one
	// of [Severities] (compared case-insensitively); default "warning". A
	// value outside Severities is replaced by "warning".
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
	if sev, ok := normalizeSeverity(o.DefaultSeverity); ok {
		o.DefaultSeverity = sev
	} else {
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
	// ResolvedEarly counts resolved alerts whose firing episode had no
	// incident (the resolved notification came first, or the firing one was
	// lost): each is recorded as an incident that is already resolved, so a
	// firing notification arriving later opens nothing.
	ResolvedEarly int `json:"resolved_early"`
	// Reopened counts firing alerts whose incident [Store.Reconcile] had
	// resolved: the alert was active after all.
	Reopened int `json:"reopened"`
	// Ignored counts resolved alerts that changed nothing: their incident
	// is already resolved or closed. (Repeated firing alerts are not
	// counted anywhere.)
	Ignored int `json:"ignored"`
}

// clip cuts v to at most max bytes on a rune boundary (v is valid UTF-8).
func clip(v string, max int) string {
	if len(v) <= max {
		return v
	}
	for max > 0 && !utf8.RuneStart(v[max]) {
		max--
	}
	return v[:max]
}

// ingestItem is one checked alert of a message.
type ingestItem struct {
	firing             bool
	fp                 string
	startsAt, endsAt   time.Time
	title, sev, source string
	desc               string
	labels             []byte
}

// cleanText refuses text that cannot be stored as it was sent.
func cleanText(field, v string) error {
	if !utf8.ValidString(v) {
		return invalid(field, "must be valid UTF-8")
	}
	if strings.IndexByte(v, 0) >= 0 {
		return invalid(field, "must not contain NUL characters")
	}
	return nil
}

func checkAlertText(i int, a WebhookAlert) error {
	at := func(f string) string { return fmt.Sprintf("alerts[%d].%s", i, f) }
	if err := cleanText(at("fingerprint"), a.Fingerprint); err != nil {
		return err
	}
	for _, m := range []struct {
		name string
		kv   map[string]string
	}{{"labels", a.Labels}, {"annotations", a.Annotations}} {
		for k, v := range m.kv {
			if err := cleanText(at(m.name), k); err != nil {
				return invalid(at(m.name), "name %q: %s", truncate(k, 40), err.(*ValidationError).Reason)
			}
			if err := cleanText(at(m.name), v); err != nil {
				return invalid(at(m.name), "value of %q: %s", truncate(k, 40), err.(*ValidationError).Reason)
			}
		}
	}
	return nil
}

// parseAlert checks one alert and maps it to what is stored.
func parseAlert(i int, a WebhookAlert, opts IntakeOptions) (ingestItem, error) {
	at := func(f string) string { return fmt.Sprintf("alerts[%d].%s", i, f) }
	it := ingestItem{startsAt: a.StartsAt, endsAt: a.EndsAt}
	switch a.Status {
	case "firing":
		it.firing = true
	case "resolved":
	default:
		return it, invalid(at("status"), "must be firing or resolved")
	}
	if a.StartsAt.IsZero() {
		return it, invalid(at("startsAt"), "is required")
	}
	if !timeInRange(a.StartsAt) {
		return it, invalid(at("startsAt"), "must be in years 1 to 9999 (UTC)")
	}
	if !a.EndsAt.IsZero() && !timeInRange(a.EndsAt) {
		return it, invalid(at("endsAt"), "must be in years 1 to 9999 (UTC)")
	}
	if err := checkAlertText(i, a); err != nil {
		return it, err
	}
	it.fp = clip(a.Fingerprint, maxShortLen)
	if it.fp == "" {
		ls := make(model.LabelSet, len(a.Labels))
		for k, v := range a.Labels {
			ls[model.LabelName(k)] = model.LabelValue(v)
		}
		it.fp = ls.Fingerprint().String()
	}
	err := mapAlert(i, &it, a, opts)
	return it, err
}

// mapAlert fills title, severity, source, description and labels as opts
// says.
func mapAlert(i int, it *ingestItem, a WebhookAlert, opts IntakeOptions) error {
	it.title = clip(a.Annotations[opts.TitleAnnotation], maxTitleLen)
	if strings.TrimSpace(it.title) == "" {
		it.title = clip(a.Labels["alertname"], maxTitleLen)
	}
	if strings.TrimSpace(it.title) == "" {
		it.title = "alert " + it.fp
	}
	sev, ok := normalizeSeverity(a.Labels[opts.SeverityLabel])
	if !ok {
		sev = opts.DefaultSeverity
	}
	it.sev = sev
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
		return invalid(fmt.Sprintf("alerts[%d].labels", i), "%v", err)
	}
	it.labels = b
	return nil
}

// Ingest applies an Alertmanager webhook message. Each firing alert opens an
// incident for its firing episode (fingerprint and startsAt) unless one
// exists, so repeated notifications open nothing new; each resolved alert
// resolves the unresolved incident of its episode. The whole message is
// checked before anything is written; then each alert is applied by
// idempotent statements, so a message that fails half way (the error is
// returned with what was done so far) is completed by a redelivery, as
// Alertmanager retries failed notifications.
//
// Times: created_at and resolved_at are the server's clock (Options.Now) at
// arrival; Alertmanager's startsAt and endsAt are kept apart (Incident
// StartsAt and AlertEndsAt). Out of order: a resolved alert whose episode
// has no incident records one that is already resolved (no resolution time,
// so it stays out of MTTR; ResolvedBy "alertmanager"), and the firing
// notification that arrives after it, in a later message or later in the
// same one, opens nothing. A firing alert whose incident [Store.Reconcile]
// resolved reopens it. See the package documentation, "Alertmanager".
func (s *Store) Ingest(ctx context.Context, msg WebhookMessage, opts IntakeOptions) (IngestResult, error) {
	opts = opts.withDefaults()
	if msg.Version != "4" {
		return IngestResult{}, invalid("version", "unsupported webhook payload version %q, want \"4\"", truncate(msg.Version, 20))
	}
	items := make([]ingestItem, 0, len(msg.Alerts))
	for i, a := range msg.Alerts {
		it, err := parseAlert(i, a, opts)
		if err != nil {
			return IngestResult{}, err
		}
		items = append(items, it)
	}
	// Each alert is its own single-statement transactions, not one
	// transaction for the message: a transaction writing several incidents
	// would hold several services' rollup rows at once and could deadlock
	// with a concurrent one (or with a lifecycle call) taking them in
	// another order. Every statement is idempotent — a firing episode is
	// inserted at most once, a resolve only matches an unresolved incident —
	// so when a failure leaves a message half applied, Alertmanager's retry
	// of the whole message completes it without duplicates.
	var res IngestResult
	for _, it := range items {
		var err error
		if it.firing {
			err = s.ingestFiring(ctx, it, &res)
		} else {
			err = s.ingestResolved(ctx, it, &res)
		}
		if err != nil {
			return res, fmt.Errorf("incidents: ingest: %w", classify(err))
		}
	}
	return res, nil
}

// ingestFiring opens the episode's incident, or reopens it if only
// reconciliation had resolved it.
func (s *Store) ingestFiring(ctx context.Context, it ingestItem, res *IngestResult) error {
	var inserted bool
	err := s.pool.QueryRow(ctx, `INSERT INTO incidents
		(title, severity, source, description, status, labels, created_at, updated_at, fingerprint, starts_at)
		VALUES ($1, $2, $3, $4, 'open', $5, $6, $6, $7, $8)
		ON CONFLICT (fingerprint, starts_at) WHERE fingerprint IS NOT NULL DO UPDATE SET
			status = 'open', resolved_at = NULL, resolved_by = NULL, resolution_note = NULL,
			updated_at = greatest(incidents.updated_at, excluded.updated_at)
		WHERE incidents.status = 'resolved' AND incidents.resolved_by = 'reconciliation'
		RETURNING xmax = '0'::xid`,
		it.title, it.sev, it.source, it.desc, string(it.labels), s.now(), it.fp, it.startsAt).Scan(&inserted)
	switch {
	case errors.Is(err, pgx.ErrNoRows): // a repeated notification
		return nil
	case err != nil:
		return err
	case inserted:
		res.Opened++
	default:
		res.Reopened++
	}
	return nil
}

// earlyNote is the resolution note of an episode first seen resolved.
const earlyNote = "resolved by Alertmanager before promflow saw it firing (the resolved notification came first, or the firing one was lost); it has no resolution time, see alert_starts_at and alert_ends_at"

// ingestResolved resolves the episode's open incident, or records the
// episode as resolved when it has none.
func (s *Store) ingestResolved(ctx context.Context, it ingestItem, res *IngestResult) error {
	var ends *time.Time
	if !it.endsAt.IsZero() {
		ends = &it.endsAt
	}
	for attempt := 0; attempt < 2; attempt++ {
		now := s.now()
		tag, err := s.pool.Exec(ctx, `UPDATE incidents SET status = 'resolved',
			resolved_at = greatest(created_at, $3), updated_at = greatest(updated_at, $3),
			alert_ends_at = $4, resolved_by = 'alertmanager', resolution_note = 'resolved by Alertmanager'
			WHERE fingerprint = $1 AND starts_at = $2 AND status IN ('open', 'acknowledged')`,
			it.fp, it.startsAt, now, ends)
		if err != nil {
			return err
		}
		if tag.RowsAffected() > 0 {
			res.Resolved++
			return nil
		}
		tag, err = s.pool.Exec(ctx, `INSERT INTO incidents
			(title, severity, source, description, status, labels, created_at, updated_at, fingerprint, starts_at,
			 alert_ends_at, resolved_by, resolution_note)
			VALUES ($1, $2, $3, $4, 'resolved', $5, $6, $6, $7, $8, $9, 'alertmanager', $10)
			ON CONFLICT (fingerprint, starts_at) WHERE fingerprint IS NOT NULL DO NOTHING`,
			it.title, it.sev, it.source, it.desc, string(it.labels), now, it.fp, it.startsAt, ends, earlyNote)
		if err != nil {
			return err
		}
		if tag.RowsAffected() > 0 {
			res.ResolvedEarly++
			return nil
		}
		// The episode has an incident: resolved already, or opened by a
		// concurrent firing notification after the UPDATE's snapshot; look
		// once more.
	}
	res.Ignored++
	return nil
}
