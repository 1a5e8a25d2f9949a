package incidents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// AlertKey identifies an Alertmanager firing episode: the alert's
// fingerprint and its startsAt.
type AlertKey struct {
	Fingerprint string
	StartsAt    time.Time
}

// ReconcileResult says what [Store.Reconcile] did.
type ReconcileResult struct {
	// Active is how many active alerts were given (or fetched).
	Active int `json:"active"`
	// Resolved lists the ids of the incidents resolved because their alert
	// is no longer active.
	Resolved []string `json:"resolved"`
}

// reconcileNote is the resolution note of a reconciled incident; %s is the
// reconciliation time.
const reconcileNote = "resolved by reconciliation: alert no longer active in Alertmanager at %s"

// Reconcile resolves the open and acknowledged alert-backed incidents (those
// with a fingerprint) created before asOf whose firing episode is not in
// active: their alert stopped firing while no notification reached this
// store (promflow was down, say). Incidents opened by hand or by other
// programs are left alone. A zero asOf means now (Options.Now).
//
// Pass as asOf the time just before the list of active alerts was taken, so
// that an incident opened by a notification that raced the list is not
// resolved. Episodes are compared by fingerprint and by startsAt to the
// millisecond, the precision of Alertmanager's API.
//
// Resolved incidents get resolved_at = the reconciliation time on the
// server's clock (the true end is unknown, and no time is invented: such an
// incident's time to resolve is an upper bound), ResolvedBy
// "reconciliation" and the note "resolved by reconciliation: alert no longer
// active in Alertmanager at <time>", so analyses can tell them apart. If the
// alert is active after all (Alertmanager had just restarted and not yet
// heard from Prometheus), its next firing notification reopens the
// incident. One statement does it all, so it is atomic and safe to run
// concurrently with the webhook and the lifecycle calls.
func (s *Store) Reconcile(ctx context.Context, active []AlertKey, asOf time.Time) (ReconcileResult, error) {
	res := ReconcileResult{Active: len(active), Resolved: []string{}}
	now := s.now()
	if asOf.IsZero() || asOf.After(now) {
		asOf = now
	}
	fps := make([]string, 0, len(active))
	starts := make([]time.Time, 0, len(active))
	for i, a := range active {
		if err := cleanText(fmt.Sprintf("active[%d].fingerprint", i), a.Fingerprint); err != nil {
			return res, err
		}
		if a.StartsAt.IsZero() || !timeInRange(a.StartsAt) {
			return res, invalid(fmt.Sprintf("active[%d].startsAt", i), "must be in years 1 to 9999 (UTC)")
		}
		fps = append(fps, a.Fingerprint)
		starts = append(starts, a.StartsAt.Truncate(time.Millisecond))
	}
	rows, err := s.pool.Query(ctx, `UPDATE incidents SET status = 'resolved',
		resolved_at = greatest(created_at, $3), updated_at = greatest(updated_at, $3),
		resolved_by = 'reconciliation', resolution_note = $5
		WHERE fingerprint IS NOT NULL AND status IN ('open', 'acknowledged') AND created_at < $4
		  AND NOT EXISTS (SELECT 1 FROM unnest($1::text[], $2::timestamptz[]) AS a(fp, st)
		                  WHERE a.fp = incidents.fingerprint
		                    AND date_trunc('milliseconds', incidents.starts_at) = a.st)
		RETURNING id::text`, fps, starts, now, asOf, fmt.Sprintf(reconcileNote, FormatTime(now)))
	if err != nil {
		return res, fmt.Errorf("incidents: reconcile: %w", classify(err))
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return res, fmt.Errorf("incidents: reconcile: %w", classify(err))
		}
		res.Resolved = append(res.Resolved, id)
	}
	if err := rows.Err(); err != nil {
		return res, fmt.Errorf("incidents: reconcile: %w", classify(err))
	}
	return res, nil
}

// ErrAlertmanager wraps the errors of [ReconcileAlertmanager] and
// [FetchActiveAlerts] that come from Alertmanager (unreachable, an error
// status, a body that is not its alert list); nothing was changed then.
var ErrAlertmanager = errors.New("incidents: alertmanager")

// maxAlertsBody bounds the alert list read from Alertmanager.
const maxAlertsBody = 64 << 20

// amAlert is the part of Alertmanager's gettableAlert (API v2) used here.
type amAlert struct {
	Fingerprint string    `json:"fingerprint"`
	StartsAt    time.Time `json:"startsAt"`
}

// FetchActiveAlerts reads the alerts Alertmanager at amURL (its base URL,
// such as http://localhost:9093) holds, from GET /api/v2/alerts: every
// alert not resolved, silenced and inhibited ones included (they still
// fire). client nil means http.DefaultClient; ctx bounds the request.
func FetchActiveAlerts(ctx context.Context, amURL string, client *http.Client) ([]AlertKey, error) {
	if client == nil {
		client = http.DefaultClient
	}
	u, err := url.Parse(strings.TrimRight(amURL, "/") + "/api/v2/alerts")
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: invalid URL %q", ErrAlertmanager, amURL)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrAlertmanager, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: GET /api/v2/alerts: %w", ErrAlertmanager, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAlertsBody+1))
	if err != nil {
		return nil, fmt.Errorf("%w: GET /api/v2/alerts: %w", ErrAlertmanager, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: GET /api/v2/alerts: %s: %s", ErrAlertmanager, resp.Status, truncate(strings.TrimSpace(string(body)), 200))
	}
	if len(body) > maxAlertsBody {
		return nil, fmt.Errorf("%w: GET /api/v2/alerts: alert list larger than %d bytes", ErrAlertmanager, maxAlertsBody)
	}
	var list []amAlert
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, fmt.Errorf("%w: GET /api/v2/alerts: not an alert list: %v", ErrAlertmanager, err)
	}
	keys := make([]AlertKey, 0, len(list))
	for i, a := range list {
		if a.Fingerprint == "" || a.StartsAt.IsZero() {
			return nil, fmt.Errorf("%w: GET /api/v2/alerts: alert %d has no fingerprint or startsAt", ErrAlertmanager, i)
		}
		keys = append(keys, AlertKey{Fingerprint: a.Fingerprint, StartsAt: a.StartsAt})
	}
	return keys, nil
}

// ReconcileAlertmanager brings the store in line with Alertmanager at amURL
// after a start: it notes the time, fetches the active alerts
// ([FetchActiveAlerts]) and calls [Store.Reconcile] with them. If
// Alertmanager cannot be read, nothing is changed and the error wraps
// [ErrAlertmanager]. Call it once the webhook is being served (so that no
// notification is missed between the list and the update), for example at
// the start of service-metrics.
func ReconcileAlertmanager(ctx context.Context, s *Store, amURL string, client *http.Client) (ReconcileResult, error) {
	asOf := s.now()
	active, err := FetchActiveAlerts(ctx, amURL, client)
	if err != nil {
		return ReconcileResult{Resolved: []string{}}, err
	}
	return s.Reconcile(ctx, active, asOf)
}
