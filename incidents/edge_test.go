package incidents_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/incidents"
)

// tableDigest is every incidents row (all columns) hashed: what "changes
// nothing" compares.
func tableDigest(t testing.TB, pool *pgxpool.Pool) string {
	t.Helper()
	var d string
	require.NoError(t, pool.QueryRow(ctxT(t), `SELECT coalesce(md5(string_agg(x::text, ',' ORDER BY x.id)), '')
		FROM incidents x`).Scan(&d))
	return d
}

func alert(status, fp string, startsAt, endsAt time.Time) incidents.WebhookAlert {
	return incidents.WebhookAlert{
		Status: status, Fingerprint: fp, StartsAt: startsAt, EndsAt: endsAt,
		Labels:      map[string]string{"alertname": "Down", "service": "checkout", "severity": "critical"},
		Annotations: map[string]string{"summary": "checkout down"},
	}
}

func message(alerts ...incidents.WebhookAlert) incidents.WebhookMessage {
	return incidents.WebhookMessage{Version: "4", Status: alerts[0].Status, Alerts: alerts}
}

// A resolved notification that arrives before its firing one, in two
// messages or in one, leaves the episode's incident resolved (never open):
// recorded at once, the firing notification opens nothing.
func TestOutOfOrderResolve(t *testing.T) {
	clk := newClock(t0)
	s, pool := newStore(t, incidents.Options{Now: clk.Now})
	ctx := ctxT(t)
	start := t0.Add(-10 * time.Minute)
	end := t0.Add(-time.Minute)
	cases := []struct {
		name  string
		msgs  []incidents.WebhookMessage
		wants []incidents.IngestResult
	}{
		{"separate messages", []incidents.WebhookMessage{
			message(alert("resolved", "fp-sep", start, end)),
			message(alert("firing", "fp-sep", start, time.Time{})),
		}, []incidents.IngestResult{{ResolvedEarly: 1}, {}}},
		{"one message [resolved, firing]", []incidents.WebhookMessage{
			message(alert("resolved", "fp-one", start, end), alert("firing", "fp-one", start, time.Time{})),
		}, []incidents.IngestResult{{ResolvedEarly: 1}}},
		{"redelivered after", []incidents.WebhookMessage{
			message(alert("resolved", "fp-re", start, end), alert("firing", "fp-re", start, time.Time{})),
			message(alert("resolved", "fp-re", start, end), alert("firing", "fp-re", start, time.Time{})),
		}, []incidents.IngestResult{{ResolvedEarly: 1}, {Ignored: 1}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for i, m := range c.msgs {
				clk.Advance(time.Second)
				res, err := s.Ingest(ctx, m, incidents.IntakeOptions{})
				require.NoError(t, err)
				assert.Equal(t, c.wants[i], res, "message %d", i)
			}
			fp := c.msgs[0].Alerts[0].Fingerprint
			var id string
			var n int
			require.NoError(t, pool.QueryRow(ctx, "SELECT min(id::text), count(*) FROM incidents WHERE fingerprint = $1", fp).Scan(&id, &n))
			require.Equal(t, 1, n, "one incident for the episode")
			in, err := s.Get(ctx, id)
			require.NoError(t, err)
			assert.Equal(t, incidents.StatusResolved, in.Status, "never open")
			assert.Nil(t, in.ResolvedAt, "no resolution time: never seen open, out of MTTR")
			assert.Equal(t, incidents.ResolvedByAlertmanager, in.ResolvedBy)
			assert.Contains(t, in.ResolutionNote, "before promflow saw it firing")
			require.NotNil(t, in.StartsAt)
			require.NotNil(t, in.AlertEndsAt)
			assert.Equal(t, start, *in.StartsAt)
			assert.Equal(t, end, *in.AlertEndsAt)
			assert.Equal(t, "checkout down", in.Title)
			assert.Equal(t, "critical", in.Severity)
		})
	}
	st, err := s.Stats(ctx, incidents.StatsQuery{})
	require.NoError(t, err)
	assert.Equal(t, int64(3), st.Overall.Resolved)
	assert.Zero(t, st.Overall.StillOpen)
	assert.Nil(t, st.Overall.MTTR, "no MTTR of 0 from incidents never seen open")
	requireRollupsExact(t, pool)

	// In order, in one message: opened, then resolved at the server's time.
	clk.Advance(time.Minute)
	res, err := s.Ingest(ctx, message(alert("firing", "fp-ord", start, time.Time{}), alert("resolved", "fp-ord", start, end)), incidents.IntakeOptions{})
	require.NoError(t, err)
	assert.Equal(t, incidents.IngestResult{Opened: 1, Resolved: 1}, res)

	// Through the webhook route, both shapes.
	h := s.Handler()
	post := func(alerts ...incidents.WebhookAlert) string {
		b, err := json.Marshal(message(alerts...))
		require.NoError(t, err)
		code, body := serve(t, h, "POST", "/api/alertmanager/webhook", string(b))
		require.Equal(t, http.StatusOK, code, body)
		return body
	}
	assert.Contains(t, post(alert("resolved", "fp-http1", start, end), alert("firing", "fp-http1", start, time.Time{})), `"resolved_early":1`)
	assert.Contains(t, post(alert("resolved", "fp-http2", start, end)), `"resolved_early":1`)
	assert.Contains(t, post(alert("firing", "fp-http2", start, time.Time{})), `"opened":0`)
	var open int
	require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM incidents WHERE fingerprint LIKE 'fp-http%' AND status <> 'resolved'").Scan(&open))
	assert.Zero(t, open)
	requireRollupsExact(t, pool)
}

// Lifecycle times come from the server's clock; Alertmanager's startsAt and
// endsAt are kept apart. An endsAt before the incident's creation (clock
// skew, or a notification delayed) no longer makes MTTR zero.
func TestOneClock(t *testing.T) {
	clk := newClock(t0)
	s, _ := newStore(t, incidents.Options{Now: clk.Now})
	ctx := ctxT(t)
	h := s.Handler()
	start := t0.Add(-time.Hour).Add(123456 * time.Microsecond)
	end := t0.Add(-30 * time.Minute) // Alertmanager's clock says: before the arrival
	res, err := s.Ingest(ctx, message(alert("firing", "fp-clock", start, start.Add(4*time.Minute))), incidents.IntakeOptions{})
	require.NoError(t, err)
	require.Equal(t, 1, res.Opened)
	clk.Advance(10 * time.Minute)
	res, err = s.Ingest(ctx, message(alert("resolved", "fp-clock", start, end)), incidents.IntakeOptions{})
	require.NoError(t, err)
	require.Equal(t, 1, res.Resolved)

	page, err := s.Details(ctx, incidents.DetailsQuery{})
	require.NoError(t, err)
	require.Len(t, page.Items, 1)
	d := page.Items[0]
	assert.Equal(t, t0, d.CreatedAt, "arrival, server clock")
	require.NotNil(t, d.ResolvedAt)
	assert.Equal(t, t0.Add(10*time.Minute), *d.ResolvedAt, "resolution, server clock")
	require.NotNil(t, d.MTTRSeconds)
	assert.Equal(t, 600.0, *d.MTTRSeconds)
	require.NotNil(t, d.AlertStartsAt)
	require.NotNil(t, d.AlertEndsAt)
	assert.Equal(t, start, *d.AlertStartsAt)
	assert.Equal(t, end, *d.AlertEndsAt)

	code, body := serve(t, h, "GET", "/api/incidents/"+d.ID, "")
	require.Equal(t, http.StatusOK, code, body)
	checkTimesJSON(t, body)
	assert.Contains(t, body, `"alert_starts_at":"`+incidents.FormatTime(start)+`"`)
	assert.Contains(t, body, `"alert_ends_at":"2026-02-10T04:30:00.000Z"`)
	assert.Contains(t, body, `"resolved_at":"2026-02-10T05:10:00.000Z"`)
	assert.Contains(t, body, `"resolved_by":"alertmanager"`)
	code, body = serve(t, h, "GET", "/api/metrics/incidents/details", "")
	require.Equal(t, http.StatusOK, code, body)
	checkTimesJSON(t, body)
	assert.Contains(t, body, `"alert_starts_at":"2026-02-10T04:00:00.123Z"`)
	assert.Contains(t, body, `"alert_ends_at":"2026-02-10T04:30:00.000Z"`)
	st, err := s.Stats(ctx, incidents.StatsQuery{})
	require.NoError(t, err)
	require.NotNil(t, st.Overall.MTTR)
	assert.Equal(t, 600.0, st.Overall.MTTR.Mean)

	// A firing alert's endsAt (a forecast) is not stored; an incident opened
	// by hand has neither field in its JSON.
	code, body = serve(t, h, "POST", "/api/incidents", `{"title":"t","source":"s"}`)
	require.Equal(t, http.StatusCreated, code, body)
	assert.NotContains(t, body, "alert_starts_at")
	assert.NotContains(t, body, "alert_ends_at")
}

func TestCloseIncident(t *testing.T) {
	clk := newClock(t0)
	s, pool := newStore(t, incidents.Options{Now: clk.Now})
	ctx := ctxT(t)
	h := s.Handler()
	open := func() string {
		in, err := s.Open(ctx, incidents.NewIncident{Title: "x", Source: "a"})
		require.NoError(t, err)
		return in.ID
	}
	fromOpen, fromAck, fromResolved, fromClosed := open(), open(), open(), open()
	_, err := s.Acknowledge(ctx, fromAck)
	require.NoError(t, err)
	clk.Advance(time.Minute)
	for _, id := range []string{fromResolved, fromClosed} {
		_, err = s.Resolve(ctx, id)
		require.NoError(t, err)
	}
	_, err = s.CloseIncident(ctx, fromClosed)
	require.NoError(t, err)

	for _, c := range []struct {
		name, id string
		code     int
		from     incidents.Status
	}{
		{"open", fromOpen, http.StatusConflict, incidents.StatusOpen},
		{"acknowledged", fromAck, http.StatusConflict, incidents.StatusAcknowledged},
		{"closed", fromClosed, http.StatusConflict, incidents.StatusClosed},
		{"resolved", fromResolved, http.StatusOK, ""},
		{"unknown", "00000000-0000-4000-8000-000000000000", http.StatusNotFound, ""},
		{"bad id", "nope", http.StatusBadRequest, ""},
	} {
		code, r, _ := do(t, h, "POST", "/api/incidents/"+c.id+"/close", "")
		assert.Equal(t, c.code, code, "%s: %s", c.name, r.Error)
		if c.from != "" {
			assert.Contains(t, r.Error, "cannot close incident")
			assert.Contains(t, r.Error, "it is "+string(c.from))
			_, err := s.CloseIncident(ctx, c.id)
			var se *incidents.StateError
			require.ErrorAs(t, err, &se, c.name)
			assert.Equal(t, incidents.ActionClose, se.Action)
			assert.Equal(t, c.from, se.From)
		}
	}
	in, err := s.Get(ctx, fromResolved)
	require.NoError(t, err)
	assert.Equal(t, incidents.StatusClosed, in.Status)
	require.NotNil(t, in.ResolvedAt, "the resolution is kept")
	assert.Equal(t, t0.Add(time.Minute), *in.ResolvedAt)
	assert.Equal(t, incidents.ResolvedByAPI, in.ResolvedBy)
	st, err := s.Stats(ctx, incidents.StatsQuery{})
	require.NoError(t, err)
	assert.Equal(t, int64(2), st.Overall.Closed)
	require.NotNil(t, st.Overall.MTTR)
	assert.Equal(t, int64(2), st.Overall.MTTR.Count, "closed incidents keep counting in MTTR")
	page, err := s.Details(ctx, incidents.DetailsQuery{})
	require.NoError(t, err)
	assert.Len(t, page.Items, 2, "closed ones left out")
	// Reopen brings a closed incident back and clears the resolution.
	in, err = s.Reopen(ctx, fromResolved)
	require.NoError(t, err)
	assert.Equal(t, incidents.StatusOpen, in.Status)
	assert.Nil(t, in.ResolvedAt)
	assert.Empty(t, in.ResolvedBy)
	assert.Empty(t, in.ResolutionNote)
	requireRollupsExact(t, pool)
}

func TestSeverities(t *testing.T) {
	s, pool := newStore(t, incidents.Options{})
	ctx := ctxT(t)
	h := s.Handler()
	for _, c := range []struct {
		sev, want string
		code      int
	}{
		{"critical", "critical", 201}, {"HIGH", "high", 201}, {"Warning", "warning", 201},
		{"medium", "medium", 201}, {"low", "low", 201}, {"info", "info", 201}, {"", "warning", 201},
		{"bogus", "", 400}, {"page", "", 400}, {"critical ", "", 400}, {"crit\u0000", "", 400}, {"P1", "", 400},
	} {
		body, _ := json.Marshal(map[string]string{"title": "t", "source": "s", "severity": c.sev})
		if c.sev == "critical " {
			body = []byte(`{"title":"t","source":"s","severity":"critical x"}`)
		}
		code, r, _ := do(t, h, "POST", "/api/incidents", string(body))
		require.Equal(t, c.code, code, "%q: %s", c.sev, r.Error)
		if code == 201 {
			var in incidents.Incident
			require.NoError(t, json.Unmarshal(r.Data, &in))
			assert.Equal(t, c.want, in.Severity)
		} else if c.sev != "crit\u0000" {
			assert.Contains(t, r.Error, "severity")
		}
	}
	code, _, _ := do(t, h, "GET", "/api/metrics/incidents/details?severity=bogus", "")
	assert.Equal(t, 400, code)
	code, r, _ := do(t, h, "GET", "/api/metrics/incidents/details?severity=HIGH", "")
	require.Equal(t, 200, code)
	var items []incidents.Detail
	require.NoError(t, json.Unmarshal(r.Data, &items))
	assert.Len(t, items, 1)

	// The intake maps unknown severities to the default, case-insensitively.
	start := t0
	for i, c := range []struct {
		label, def, want string
	}{
		{"CRITICAL", "", "critical"}, {"page", "", "warning"}, {"", "", "warning"},
		{"page", "Info", "info"}, {"sev9", "bogus", "warning"}, {"Low", "high", "low"},
	} {
		a := alert("firing", fmt.Sprintf("fp-sev-%d", i), start, time.Time{})
		a.Labels["severity"] = c.label
		_, err := s.Ingest(ctx, message(a), incidents.IntakeOptions{DefaultSeverity: c.def})
		require.NoError(t, err)
		var got string
		require.NoError(t, pool.QueryRow(ctx, "SELECT severity FROM incidents WHERE fingerprint = $1", a.Fingerprint).Scan(&got))
		assert.Equal(t, c.want, got, "label %q default %q", c.label, c.def)
	}

	// Rows other writers stored with other severities are read fine.
	o := originalWriter{pool}
	id, err := o.open(ctx, "from the original", "P1", "legacy")
	require.NoError(t, err)
	in, err := s.Get(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, "P1", in.Severity)
	for _, p := range []string{"/api/incidents/" + id, "/api/metrics/incidents/details", "/api/metrics/incidents/stats", "/api/metrics/incidents/by-service"} {
		code, r, _ := do(t, h, "GET", p, "")
		assert.Equal(t, 200, code, "%s: %s", p, r.Error)
	}
}
