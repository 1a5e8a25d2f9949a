package incidents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Status is the lifecycle state of an incident.
type Status string

// The statuses of the original platform. Closed is reached from resolved by
// [Store.CloseIncident]: the incident is done and archived (Details leaves it
// out unless asked for it).
const (
	StatusOpen         Status = "open"
	StatusAcknowledged Status = "acknowledged"
	StatusResolved     Status = "resolved"
	StatusClosed       Status = "closed"
)

func (s Status) valid() bool {
	switch s {
	case StatusOpen, StatusAcknowledged, StatusResolved, StatusClosed:
		return true
	}
	return false
}

// Action is a lifecycle transition, as named in a [StateError].
type Action string

// The lifecycle actions.
const (
	ActionAcknowledge Action = "acknowledge"
	ActionResolve     Action = "resolve"
	ActionReopen      Action = "reopen"
	ActionClose       Action = "close"
)

// Who resolved an incident ([Incident].ResolvedBy).
const (
	ResolvedByAPI            = "api"            // Store.Resolve or its REST route
	ResolvedByAlertmanager   = "alertmanager"   // a resolved notification
	ResolvedByReconciliation = "reconciliation" // Store.Reconcile
)

// Severities is the documented set of severities, most severe first. The
// REST API accepts these only (any case; stored in lower case); the
// Alertmanager intake maps other values to IntakeOptions.DefaultSeverity.
// Rows other programs wrote with other severities are read as they are.
var Severities = []string{"critical", "high", "warning", "medium", "low", "info"}

// normalizeSeverity returns v in lower case if it is one of [Severities].
func normalizeSeverity(v string) (string, bool) {
	l := strings.ToLower(strings.TrimSpace(v))
	for _, s := range Severities {
		if l == s {
			return s, true
		}
	}
	return "", false
}

// Incident is one row of the incidents table.
type Incident struct {
	ID          string            `json:"id"`
	Title       string            `json:"title"`
	Severity    string            `json:"severity"`
	Source      string            `json:"source"` // the service; UnknownService for a NULL source
	Description string            `json:"description"`
	Status      Status            `json:"status"`
	Labels      map[string]string `json:"labels"`
	AssignedTo  *string           `json:"assigned_to"`
	CreatedAt   time.Time         `json:"created_at"`
	UpdatedAt   time.Time         `json:"updated_at"`
	// AcknowledgedAt is the first acknowledgement; it survives a reopen.
	AcknowledgedAt *time.Time `json:"acknowledged_at"`
	// ResolvedAt is the resolution time: nil unless the status is resolved
	// or closed (a row another program reopened may keep resolved_at in the
	// table; it is not reported).
	ResolvedAt *time.Time `json:"resolved_at"`
	// Fingerprint and StartsAt identify the Alertmanager firing episode that
	// opened the incident; both are empty for incidents opened by hand.
	// StartsAt is Alertmanager's startsAt (its clock, not the server's); the
	// JSON carries it as starts_at and as alert_starts_at.
	Fingerprint string     `json:"fingerprint,omitempty"`
	StartsAt    *time.Time `json:"starts_at,omitempty"`
	// AlertEndsAt is Alertmanager's endsAt from the resolved notification
	// (its clock); nil until one arrived. ResolvedAt is the server's time.
	AlertEndsAt *time.Time `json:"alert_ends_at,omitempty"`
	// ResolvedBy is one of ResolvedByAPI, ResolvedByAlertmanager,
	// ResolvedByReconciliation, or empty (not resolved, or resolved by
	// another program); ResolutionNote explains it in words. Both are
	// reported only while the status is resolved or closed.
	ResolvedBy     string `json:"resolved_by,omitempty"`
	ResolutionNote string `json:"resolution_note,omitempty"`
}

// NewIncident is what [Store.Open] needs to open an incident. Title and
// Source are required; Severity is one of [Severities] (any case) and
// defaults to "warning".
type NewIncident struct {
	Title       string            `json:"title"`
	Severity    string            `json:"severity"`
	Source      string            `json:"source"`
	Description string            `json:"description"`
	Labels      map[string]string `json:"labels"`
	AssignedTo  string            `json:"assigned_to"`
}

// Limits on stored text, checked before anything is written.
const (
	maxTitleLen       = 512 // the original schema's varchar(512)
	maxShortLen       = 200 // severity, source, assigned_to, label names
	maxDescriptionLen = 64 << 10
	maxLabelValueLen  = 4096
	maxLabels         = 64
)

func checkText(field, v string, max int, required bool) error {
	if required && strings.TrimSpace(v) == "" {
		return invalid(field, "must not be empty")
	}
	if !utf8.ValidString(v) {
		return invalid(field, "must be valid UTF-8")
	}
	if strings.IndexByte(v, 0) >= 0 {
		return invalid(field, "must not contain NUL bytes")
	}
	if len(v) > max {
		return invalid(field, "longer than %d bytes", max)
	}
	return nil
}

func (n *NewIncident) validate() error {
	if n.Severity == "" {
		n.Severity = "warning"
	}
	if err := checkText("title", n.Title, maxTitleLen, true); err != nil {
		return err
	}
	if err := checkText("severity", n.Severity, maxShortLen, true); err != nil {
		return err
	}
	sev, ok := normalizeSeverity(n.Severity)
	if !ok {
		return invalid("severity", "%q is not one of %s", truncate(n.Severity, 40), strings.Join(Severities, ", "))
	}
	n.Severity = sev
	if err := checkText("source", n.Source, maxShortLen, true); err != nil {
		return err
	}
	if err := checkText("description", n.Description, maxDescriptionLen, false); err != nil {
		return err
	}
	if err := checkText("assigned_to", n.AssignedTo, maxShortLen, false); err != nil {
		return err
	}
	if len(n.Labels) > maxLabels {
		return invalid("labels", "more than %d labels", maxLabels)
	}
	for k, v := range n.Labels {
		if err := checkText("labels", k, maxShortLen, true); err != nil {
			return invalid("labels", "label name %q: %s", k, err.(*ValidationError).Reason)
		}
		// An empty value means "no such label" in Prometheus; a label that
		// is sent must say something.
		if err := checkText("labels", v, maxLabelValueLen, true); err != nil {
			return invalid("labels", "value of %q: %s", k, err.(*ValidationError).Reason)
		}
	}
	return nil
}

// Options configures a [Store]. The zero value works.
type Options struct {
	// Logger receives the store's diagnostics; default slog.Default().
	Logger *slog.Logger
	// Now is the clock for lifecycle timestamps; default time.Now. A
	// timestamp earlier than the incident's creation is raised to it, so a
	// clock behind the database's never breaks the constraints.
	Now func() time.Time
	// ExactPercentileLimit: when a stats query covers at most this many
	// incidents, percentiles are computed exactly
	// from the base table; above it they come from the rollup histograms
	// (see the package documentation for the error bound). Default 10000;
	// negative means always use the histograms.
	ExactPercentileLimit int
}

// Store reads and writes incidents in PostgreSQL. Call [Migrate] once before
// using it. A Store is safe for concurrent use; it owns no goroutines and
// does not close the pool.
type Store struct {
	pool *pgxpool.Pool
	log  *slog.Logger
	now  func() time.Time
	// exactLimit is ExactPercentileLimit with the default applied.
	exactLimit int
	slots      slotCalibration
	allTime    allTimeCache
}

// NewStore returns a Store on pool.
func NewStore(pool *pgxpool.Pool, opts Options) *Store {
	s := &Store{pool: pool, log: opts.Logger, now: opts.Now, exactLimit: opts.ExactPercentileLimit}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.exactLimit == 0 {
		s.exactLimit = 10000
	}
	return s
}

// Pool returns the pool the store uses.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// incidentColumns reads a row by the rules of the package documentation
// ("Shared tables"): a NULL source is the service "unknown", resolved_at
// counts only for a resolved or closed row.
const incidentColumns = `id::text, title, severity, incidents_service(source), coalesce(description, ''), status,
	coalesce(labels, '{}'::jsonb), assigned_to, created_at, updated_at, acknowledged_at,
	incidents_resolution(status, resolved_at), coalesce(fingerprint, ''), starts_at, alert_ends_at,
	CASE WHEN status IN ('resolved', 'closed') THEN coalesce(resolved_by, '') ELSE '' END,
	CASE WHEN status IN ('resolved', 'closed') THEN coalesce(resolution_note, '') ELSE '' END`

// UnknownService is the service of incidents without a source (rows written
// by other programs with source NULL).
const UnknownService = "unknown"

// serviceCond is the SQL condition "the row's service is param": also
// source IS NULL when the service asked for is UnknownService. The text is
// constant; the value travels as the parameter.
func serviceCond(param, service string) string {
	if service == UnknownService {
		return "(source = " + param + " OR source IS NULL)"
	}
	return "source = " + param
}

func scanIncident(row pgx.Row) (Incident, error) {
	var (
		in     Incident
		status string
		labels []byte
	)
	err := row.Scan(&in.ID, &in.Title, &in.Severity, &in.Source, &in.Description, &status, &labels,
		&in.AssignedTo, &in.CreatedAt, &in.UpdatedAt, &in.AcknowledgedAt, &in.ResolvedAt, &in.Fingerprint, &in.StartsAt,
		&in.AlertEndsAt, &in.ResolvedBy, &in.ResolutionNote)
	if err != nil {
		return Incident{}, err
	}
	in.Status = Status(status)
	in.Labels = decodeLabels(labels)
	in.CreatedAt = in.CreatedAt.UTC()
	in.UpdatedAt = in.UpdatedAt.UTC()
	utcPtr(in.AcknowledgedAt)
	utcPtr(in.ResolvedAt)
	utcPtr(in.StartsAt)
	utcPtr(in.AlertEndsAt)
	return in, nil
}

func utcPtr(t *time.Time) {
	if t != nil {
		*t = t.UTC()
	}
}

// decodeLabels reads a labels object tolerantly: rows written by other
// programs may hold non-string values, which are kept as their JSON text.
func decodeLabels(b []byte) map[string]string {
	out := map[string]string{}
	var raw map[string]json.RawMessage
	if json.Unmarshal(b, &raw) != nil {
		return out
	}
	for k, v := range raw {
		var s string
		if json.Unmarshal(v, &s) == nil {
			out[k] = s
		} else {
			out[k] = string(v)
		}
	}
	return out
}

// Open creates an incident with status open and returns it.
func (s *Store) Open(ctx context.Context, n NewIncident) (Incident, error) {
	if err := n.validate(); err != nil {
		return Incident{}, err
	}
	labels := n.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	lb, err := json.Marshal(labels)
	if err != nil {
		return Incident{}, invalid("labels", "%v", err)
	}
	var assigned *string
	if n.AssignedTo != "" {
		assigned = &n.AssignedTo
	}
	now := s.now()
	in, err := scanIncident(s.pool.QueryRow(ctx, `INSERT INTO incidents
		(title, severity, source, description, status, labels, assigned_to, created_at, updated_at)
		VALUES ($1, $2, $3, $4, 'open', $5, $6, $7, $7)
		RETURNING `+incidentColumns,
		n.Title, n.Severity, n.Source, n.Description, string(lb), assigned, now))
	if err != nil {
		return Incident{}, fmt.Errorf("incidents: open: %w", classify(err))
	}
	return in, nil
}

// Get returns the incident with the given id, or [ErrNotFound].
func (s *Store) Get(ctx context.Context, id string) (Incident, error) {
	uid, err := ParseID(id)
	if err != nil {
		return Incident{}, err
	}
	in, err := scanIncident(s.pool.QueryRow(ctx, "SELECT "+incidentColumns+" FROM incidents WHERE id = $1", uid))
	if errors.Is(err, pgx.ErrNoRows) {
		return Incident{}, fmt.Errorf("incidents: get %s: %w", uid, ErrNotFound)
	}
	if err != nil {
		return Incident{}, fmt.Errorf("incidents: get: %w", classify(err))
	}
	return in, nil
}

// Acknowledge moves an open incident to acknowledged. The first
// acknowledgement time is kept: acknowledging a reopened incident again does
// not move it. Any other current status gives a [*StateError].
func (s *Store) Acknowledge(ctx context.Context, id string) (Incident, error) {
	return s.transition(ctx, id, ActionAcknowledge, `UPDATE incidents SET status = 'acknowledged',
		acknowledged_at = coalesce(acknowledged_at, greatest(created_at, $2)),
		updated_at = greatest(updated_at, $2)
		WHERE id = $1 AND status = 'open' RETURNING `+incidentColumns)
}

// Resolve moves an open or acknowledged incident to resolved (ResolvedBy
// "api"). Resolving a resolved or closed incident gives a [*StateError].
func (s *Store) Resolve(ctx context.Context, id string) (Incident, error) {
	return s.transition(ctx, id, ActionResolve, `UPDATE incidents SET status = 'resolved',
		resolved_at = greatest(created_at, $2), updated_at = greatest(updated_at, $2),
		resolved_by = 'api', resolution_note = 'resolved through the API'
		WHERE id = $1 AND status IN ('open', 'acknowledged') RETURNING `+incidentColumns)
}

// Reopen moves a resolved or closed incident back to open and clears its
// resolution (time, ResolvedBy, ResolutionNote); its first acknowledgement
// time is kept. Reopening an open or acknowledged incident gives a
// [*StateError].
func (s *Store) Reopen(ctx context.Context, id string) (Incident, error) {
	return s.transition(ctx, id, ActionReopen, `UPDATE incidents SET status = 'open',
		resolved_at = NULL, resolved_by = NULL, resolution_note = NULL, updated_at = greatest(updated_at, $2)
		WHERE id = $1 AND status IN ('resolved', 'closed') RETURNING `+incidentColumns)
}

// CloseIncident moves a resolved incident to closed, the end of the
// lifecycle: the resolution (time, ResolvedBy) is kept, so it still counts
// in MTTR, and Details leaves it out unless asked for status closed. Only a
// resolved incident can be closed; any other status (open, acknowledged:
// resolve it first; closed) gives a [*StateError]. [Store.Reopen] brings a
// closed incident back to open.
func (s *Store) CloseIncident(ctx context.Context, id string) (Incident, error) {
	return s.transition(ctx, id, ActionClose, `UPDATE incidents SET status = 'closed',
		updated_at = greatest(updated_at, $2)
		WHERE id = $1 AND status = 'resolved' RETURNING `+incidentColumns)
}

// transition runs one guarded UPDATE; the WHERE clause makes the state check
// and the change a single atomic step. When it matches nothing, a second
// look tells a missing incident from one in the wrong state. If that look
// finds a status the action allows, a concurrent change slipped in between
// the two statements, and the UPDATE is tried again, so a StateError always
// names a status that really forbids the action.
func (s *Store) transition(ctx context.Context, id string, action Action, query string) (Incident, error) {
	uid, err := ParseID(id)
	if err != nil {
		return Incident{}, err
	}
	for attempt := 0; ; attempt++ {
		in, err := scanIncident(s.pool.QueryRow(ctx, query, uid, s.now()))
		if err == nil {
			return in, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return Incident{}, fmt.Errorf("incidents: %s: %w", action, classify(err))
		}
		var cur string
		err = s.pool.QueryRow(ctx, "SELECT status FROM incidents WHERE id = $1", uid).Scan(&cur)
		if errors.Is(err, pgx.ErrNoRows) {
			return Incident{}, fmt.Errorf("incidents: %s %s: %w", action, uid, ErrNotFound)
		}
		if err != nil {
			return Incident{}, fmt.Errorf("incidents: %s: %w", action, classify(err))
		}
		if !action.allowedFrom(Status(cur)) || attempt >= 100 {
			return Incident{}, &StateError{ID: uid, Action: action, From: Status(cur)}
		}
	}
}

// allowedFrom reports whether the action may start from status st; it
// mirrors the WHERE clauses of the transition statements.
func (a Action) allowedFrom(st Status) bool {
	switch a {
	case ActionAcknowledge:
		return st == StatusOpen
	case ActionResolve:
		return st == StatusOpen || st == StatusAcknowledged
	case ActionReopen:
		return st == StatusResolved || st == StatusClosed
	case ActionClose:
		return st == StatusResolved
	}
	return false
}

// ParseID checks that id is a UUID (8-4-4-4-12 hex digits, any case, or 32
// hex digits) and returns it in canonical lower-case form.
func ParseID(id string) (string, error) {
	h := strings.ReplaceAll(id, "-", "")
	if len(h) != 32 || (len(id) != 32 && len(id) != 36) {
		return "", invalid("id", "%q is not a UUID", truncate(id, 64))
	}
	if len(id) == 36 && (id[8] != '-' || id[13] != '-' || id[18] != '-' || id[23] != '-') {
		return "", invalid("id", "%q is not a UUID", truncate(id, 64))
	}
	b := []byte(strings.ToLower(h))
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return "", invalid("id", "%q is not a UUID", truncate(id, 64))
		}
	}
	return string(b[0:8]) + "-" + string(b[8:12]) + "-" + string(b[12:16]) + "-" + string(b[16:20]) + "-" + string(b[20:32]), nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
