package incidents_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/incidents"
)

// readRoutes are the GET routes every table state must answer with 200.
var readRoutes = []string{
	"/api/metrics/incidents/by-service",
	"/api/metrics/incidents/details",
	"/api/metrics/incidents/details?limit=1",
	"/api/metrics/incidents/details?status=closed",
	"/api/metrics/incidents/stats",
	"/api/metrics/incidents/stats?from=0001-01-01T00:00:01Z&to=9999-12-31T23:59:59.999Z",
	"/api/metrics/incidents/stats?from=2026-01-01T00:00:00Z",
	"/api/metrics/incidents/stats?to=2026-01-01T00:00:00Z",
}

// requireReadsOK runs every read route (details paged to the end) and every
// incident's GET: all 200 with times in toISOString form.
func requireReadsOK(t *testing.T, h http.Handler, ids []string) {
	t.Helper()
	for _, p := range readRoutes {
		code, body := serve(t, h, "GET", p, "")
		require.Equal(t, http.StatusOK, code, "%s: %s", p, body)
	}
	cursor, pages := "", 0
	for ; pages < 100; pages++ {
		target := "/api/metrics/incidents/details?limit=1"
		if cursor != "" {
			target += "&cursor=" + url.QueryEscape(cursor)
		}
		code, body := serve(t, h, "GET", target, "")
		require.Equal(t, http.StatusOK, code, "%s: %s", target, body)
		var r apiResponse
		require.NoError(t, json.Unmarshal([]byte(body), &r))
		if r.NextCursor == "" {
			break
		}
		cursor = r.NextCursor
	}
	require.Less(t, pages, 100)
	for _, id := range ids {
		code, body := serve(t, h, "GET", "/api/incidents/"+id, "")
		require.Equal(t, http.StatusOK, code, body)
	}
}

// Rows written by SQL with infinite or out-of-range times are refused by the
// version 5 check with its name as the message, before a trigger runs; the
// edges of years 1-9999 are accepted, and every route, the rollups and the
// feed work with them. Rows written before the check (NOT VALID) are read.
func TestExtremeTimestamps(t *testing.T) {
	s, pool := newStore(t, incidents.Options{})
	ctx := ctxT(t)
	h := incidents.NewHandler(s, incidents.HandlerOptions{Logger: quietLogger})
	sub, err := s.Subscribe(ctx, incidents.SubscribeOptions{})
	require.NoError(t, err)
	defer sub.Close()

	for _, c := range []struct{ column, value string }{
		{"created_at", "infinity"}, {"created_at", "-infinity"},
		{"created_at", "0001-01-01 00:00:00+00 BC"}, {"created_at", "4713-01-01 00:00:00+00 BC"},
		{"created_at", "10000-01-01 00:00:00+00"}, {"created_at", "294276-01-01 00:00:00+00"},
		{"updated_at", "infinity"}, {"acknowledged_at", "infinity"}, {"resolved_at", "infinity"},
		{"resolved_at", "10000-01-01 00:00:00+00"}, {"starts_at", "-infinity"}, {"alert_ends_at", "infinity"},
	} {
		fp := "NULL"
		if c.column == "starts_at" {
			fp = "'fp'"
		}
		q := fmt.Sprintf(`INSERT INTO incidents (title, source, status, fingerprint, %s) VALUES ('x', 'sql', 'resolved', %s, '%s')`, c.column, fp, c.value)
		_, err := pool.Exec(ctx, q)
		require.Error(t, err, q)
		assert.Contains(t, err.Error(), "incidents_times_within_years_1_to_9999", q)
	}
	_, err = pool.Exec(ctx, `UPDATE incidents SET resolved_at = 'infinity'`)
	require.NoError(t, err, "no rows yet")

	var ids []string
	for _, q := range []string{
		`INSERT INTO incidents (title, source, status, created_at, updated_at) VALUES ('first', 'sql', 'open', '0001-01-01 00:00:00+00', '0001-01-01 00:00:00+00') RETURNING id::text`,
		`INSERT INTO incidents (title, source, status, created_at, updated_at, acknowledged_at, resolved_at)
		 VALUES ('edges', 'sql', 'resolved', '0001-01-01 00:00:00+00', '9999-12-31 23:59:59.999999+00', '5000-01-01 00:00:00+00', '9999-12-31 23:59:59.999999+00') RETURNING id::text`,
		`INSERT INTO incidents (title, source, status, created_at, updated_at) VALUES ('last', 'sql', 'open', '9999-12-31 23:59:59.999999+00', '9999-12-31 23:59:59.999999+00') RETURNING id::text`,
	} {
		var id string
		require.NoError(t, pool.QueryRow(ctx, q).Scan(&id), q)
		ids = append(ids, id)
	}
	for range ids {
		ev := nextEvent(t, sub)
		require.NotNil(t, ev.Incident, "the feed reads the row: %+v", ev)
		b, err := json.Marshal(ev)
		require.NoError(t, err)
		checkTimesJSON(t, string(b))
	}
	requireRollupsExact(t, pool)
	requireReadsOK(t, h, ids)
	code, body := serve(t, h, "GET", "/api/incidents/"+ids[2], "")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, `"created_at":"9999-12-31T23:59:59.999Z"`)
	st, err := s.Stats(ctx, incidents.StatsQuery{})
	require.NoError(t, err)
	assert.Equal(t, int64(3), st.Overall.Incidents)

	// A row from before the check, outside the range (a copy loaded with
	// the check absent): still read everywhere; changing it through the
	// package is a clear 400.
	_, err = pool.Exec(ctx, `ALTER TABLE incidents DROP CONSTRAINT incidents_times_within_years_1_to_9999`)
	require.NoError(t, err)
	var oldIDs []string
	for _, ts := range []string{"20000-06-01 00:00:00+00", "3000-01-01 00:00:00+00 BC"} {
		var id string
		require.NoError(t, pool.QueryRow(ctx, `INSERT INTO incidents (title, source, status, created_at, updated_at)
			VALUES ('old', 'sql', 'open', $1::timestamptz, $1::timestamptz) RETURNING id::text`, ts).Scan(&id))
		oldIDs = append(oldIDs, id)
		ev := nextEvent(t, sub)
		require.NotNil(t, ev.Incident, "the feed reads a row outside years 0-9999: %+v", ev)
		_, err := json.Marshal(ev)
		require.NoError(t, err)
	}
	require.NoError(t, incidents.Migrate(ctx, pool))
	_, err = pool.Exec(ctx, `DELETE FROM incidents_schema_migrations WHERE version = 5`)
	require.NoError(t, err)
	require.NoError(t, incidents.Migrate(ctx, pool), "version 5 re-applied over old rows: NOT VALID")
	requireReadsOK(t, h, append(ids, oldIDs...))
	code, body = serve(t, h, "GET", "/api/incidents/"+oldIDs[0], "")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, `"created_at":"+020000-06-01T00:00:00.000Z"`, "toISOString's expanded years")
	code, body = serve(t, h, "GET", "/api/incidents/"+oldIDs[1], "")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, `"created_at":"-002999-01-01T00:00:00.000Z"`)
	code, body = serve(t, h, "POST", "/api/incidents/"+oldIDs[0]+"/acknowledge", "")
	assert.Equal(t, http.StatusBadRequest, code, body)
	assert.Contains(t, body, "outside years 1 to 9999")
	requireRollupsExact(t, pool)
}

// Bad input of every kind is a 4xx naming the problem, never a 5xx, and
// changes nothing.
func TestInputValidation(t *testing.T) {
	clk := newClock(t0)
	s, pool := newStore(t, incidents.Options{Now: clk.Now})
	ctx := ctxT(t)
	h := incidents.NewHandler(s, incidents.HandlerOptions{MaxBodyBytes: 2048, Intake: incidents.IntakeOptions{MaxBodyBytes: 4096}})
	in, err := s.Open(ctx, incidents.NewIncident{Title: "x", Source: "a"})
	require.NoError(t, err)
	before := tableDigest(t, pool)

	inc := func(field string) string { // a create body with one raw JSON field value
		return `{"title":"t","source":"s",` + field + `}`
	}
	hook := func(labelValue string) string {
		return `{"version":"4","alerts":[{"status":"firing","labels":{"alertname":"A","k":"` + labelValue + `"},"startsAt":"2026-01-01T00:00:00Z"}]}`
	}
	cursorOf := func(raw string) string { return url.QueryEscape(base64.RawURLEncoding.EncodeToString([]byte(raw))) }
	const uuid = "00000000-0000-4000-8000-000000000000"
	cases := []struct {
		name, method, target, body string
		code                       int
		msg                        string
	}{
		{"title invalid UTF-8", "POST", "/api/incidents", `{"title":"a` + "\xff" + `","source":"s"}`, 400, "UTF-8"},
		{"label value invalid UTF-8", "POST", "/api/incidents", inc(`"labels":{"k":"` + "\xc3\x28" + `"}`), 400, "UTF-8"},
		{"title lone high surrogate", "POST", "/api/incidents", `{"title":"\ud800","source":"s"}`, 400, "surrogate"},
		{"title lone low surrogate", "POST", "/api/incidents", `{"title":"\udc00x","source":"s"}`, 400, "surrogate"},
		{"title high then non-low", "POST", "/api/incidents", `{"title":"\ud800\u0041","source":"s"}`, 400, "surrogate"},
		{"title high at end", "POST", "/api/incidents", `{"title":"\uD83D","source":"s"}`, 400, "surrogate"},
		{"label key surrogate", "POST", "/api/incidents", inc(`"labels":{"\udfff":"v"}`), 400, "surrogate"},
		{"title NUL", "POST", "/api/incidents", `{"title":"a\u0000","source":"s"}`, 400, "NUL"},
		{"description NUL", "POST", "/api/incidents", inc(`"description":"\u0000"`), 400, "NUL"},
		{"label key NUL", "POST", "/api/incidents", inc(`"labels":{"k\u0000":"v"}`), 400, "NUL"},
		{"label value NUL", "POST", "/api/incidents", inc(`"labels":{"k":"v\u0000"}`), 400, "NUL"},
		{"trailing garbage", "POST", "/api/incidents", `{"title":"t","source":"s"} x`, 400, "trailing"},
		{"two objects", "POST", "/api/incidents", `{"title":"t","source":"s"}{"title":"t","source":"s"}`, 400, "trailing"},
		{"too large", "POST", "/api/incidents", `{"title":"` + strings.Repeat("x", 3000) + `","source":"s"}`, 413, "larger than 2048"},
		{"severity bogus", "POST", "/api/incidents", inc(`"severity":"bogus"`), 400, "severity"},
		{"close bad id", "POST", "/api/incidents/x/close", "", 400, "UUID"},
		{"webhook invalid UTF-8", "POST", "/api/alertmanager/webhook", hook("\xff"), 400, "UTF-8"},
		{"webhook lone surrogate", "POST", "/api/alertmanager/webhook", hook(`\ud800`), 400, "surrogate"},
		{"webhook NUL label", "POST", "/api/alertmanager/webhook", hook(`a\u0000`), 400, "NUL"},
		{"webhook NUL receiver", "POST", "/api/alertmanager/webhook", `{"version":"4","receiver":"\u0000","alerts":[]}`, 400, "NUL"},
		{"webhook trailing", "POST", "/api/alertmanager/webhook", hook("v") + ` x`, 400, "trailing"},
		{"webhook two objects", "POST", "/api/alertmanager/webhook", hook("v") + hook("w"), 400, "trailing"},
		{"webhook too large", "POST", "/api/alertmanager/webhook", hook(strings.Repeat("v", 5000)), 413, "larger than 4096"},
		{"webhook year 0", "POST", "/api/alertmanager/webhook", `{"version":"4","alerts":[{"status":"firing","labels":{"alertname":"A"},"startsAt":"0000-06-01T00:00:00Z"}]}`, 400, "years 1 to 9999"},
		{"webhook endsAt year 0", "POST", "/api/alertmanager/webhook", `{"version":"4","alerts":[{"status":"resolved","labels":{"alertname":"A"},"startsAt":"2026-01-01T00:00:00Z","endsAt":"0000-06-01T00:00:00Z"}]}`, 400, "years 1 to 9999"},
		{"limit hex", "GET", "/api/metrics/incidents/details?limit=0x10", "", 400, "limit"},
		{"limit exponent", "GET", "/api/metrics/incidents/details?limit=1e3", "", 400, "limit"},
		{"limit plus", "GET", "/api/metrics/incidents/details?limit=%2B5", "", 400, "limit"},
		{"limit negative", "GET", "/api/metrics/incidents/details?limit=-1", "", 400, "limit"},
		{"limit fraction", "GET", "/api/metrics/incidents/details?limit=1.0", "", 400, "limit"},
		{"limit underscore", "GET", "/api/metrics/incidents/details?limit=1_0", "", 400, "limit"},
		{"limit huge", "GET", "/api/metrics/incidents/details?limit=99999999999999999999", "", 400, "limit"},
		{"limit too big", "GET", "/api/metrics/incidents/details?limit=1001", "", 400, "limit"},
		{"service NUL", "GET", "/api/metrics/incidents/details?service=a%00", "", 400, "NUL"},
		{"service invalid UTF-8", "GET", "/api/metrics/incidents/details?service=%ff", "", 400, "UTF-8"},
		{"unknown param NUL", "GET", "/api/metrics/incidents/stats?x=%00", "", 400, "NUL"},
		{"severity filter", "GET", "/api/metrics/incidents/details?severity=bogus", "", 400, "severity"},
		{"cursor before 4713 BC", "GET", "/api/metrics/incidents/details?cursor=" + cursorOf("-300000000000000000,"+uuid), "", 400, "cursor"},
		{"cursor int64 overflow", "GET", "/api/metrics/incidents/details?cursor=" + cursorOf("9300000000000000000,"+uuid), "", 400, "cursor"},
		{"cursor hex", "GET", "/api/metrics/incidents/details?cursor=" + cursorOf("0x10,"+uuid), "", 400, "cursor"},
		{"cursor plus", "GET", "/api/metrics/incidents/details?cursor=" + cursorOf("+10,"+uuid), "", 400, "cursor"},
		{"cursor bad id", "GET", "/api/metrics/incidents/details?cursor=" + cursorOf("10,nope"), "", 400, "cursor"},
		{"from year 0", "GET", "/api/metrics/incidents/stats?from=0000-12-31T00:00:00Z", "", 400, "from"},
		{"from year 0 via offset", "GET", "/api/metrics/incidents/stats?from=0001-01-01T00:00:00%2B01:00", "", 400, "from"},
		{"to zero time", "GET", "/api/metrics/incidents/stats?to=0001-01-01T00:00:00Z", "", 400, "to"},
		{"from zero time", "GET", "/api/metrics/incidents/stats?from=0001-01-01T00:00:00Z", "", 400, "from"},
		{"from after to", "GET", "/api/metrics/incidents/stats?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", "", 400, "before"},
		{"from equals to", "GET", "/api/metrics/incidents/stats?from=2026-02-01T00:00:00Z&to=2026-02-01T00:00:00Z", "", 400, "before"},
		{"to year 10000", "GET", "/api/metrics/incidents/stats?to=10000-01-01T00:00:00Z", "", 400, "to"},
		{"stats service NUL", "GET", "/api/metrics/incidents/stats?service=%00", "", 400, "NUL"},
		{"id NUL", "GET", "/api/incidents/" + uuid[:35] + "%00", "", 400, "UUID"},
		{"id too long", "GET", "/api/incidents/" + strings.Repeat("0", 5000), "", 400, "UUID"},
	}
	for _, c := range cases {
		code, r, _ := do(t, h, c.method, c.target, c.body)
		assert.Equal(t, c.code, code, "%s: %s", c.name, r.Error)
		assert.Contains(t, r.Error, c.msg, c.name)
	}
	assert.Equal(t, before, tableDigest(t, pool), "refused requests changed nothing")

	// What is fine stays fine: a valid surrogate pair, an escaped
	// backslash before u0000, a leading-zero limit, a far cursor.
	for _, c := range []struct{ method, target, body string }{
		{"POST", "/api/incidents", `{"title":"smile \ud83d\ude00","source":"s"}`},
		{"POST", "/api/incidents", `{"title":"literal \\u0000","source":"s"}`},
		{"GET", "/api/metrics/incidents/details?limit=007", ""},
		{"GET", "/api/metrics/incidents/details?cursor=" + cursorOf("-200000000000000000,"+uuid), ""},
		{"GET", "/api/metrics/incidents/stats?from=0001-01-01T00:00:00.000001Z&to=9999-12-31T23:59:59.999999Z", ""},
		{"POST", "/api/incidents/" + in.ID + "/resolve", ""},
		{"POST", "/api/incidents/" + in.ID + "/close", ""},
	} {
		code, r, _ := do(t, h, c.method, c.target, c.body)
		assert.Less(t, code, 300, "%s %s: %s", c.method, c.target, r.Error)
	}
	code, body := serve(t, h, "GET", "/api/metrics/incidents/details?limit=10", "")
	require.Equal(t, 200, code)
	assert.Contains(t, body, "smile 😀")
	assert.Contains(t, body, `literal \\u0000`)

	// The Go API checks what the HTTP layer does not see.
	_, err = s.Stats(ctx, incidents.StatsQuery{From: time.Date(20000, 1, 1, 0, 0, 0, 0, time.UTC)})
	assert.ErrorIs(t, err, incidents.ErrInvalid)
	_, err = s.Stats(ctx, incidents.StatsQuery{To: time.Date(-5000, 1, 1, 0, 0, 0, 0, time.UTC)})
	assert.ErrorIs(t, err, incidents.ErrInvalid)
	before = tableDigest(t, pool)
	for _, a := range []incidents.WebhookAlert{
		{Status: "firing", StartsAt: t0, Labels: map[string]string{"alertname": "A", "k": "v\x00"}},
		{Status: "firing", StartsAt: t0, Labels: map[string]string{"alertname": "A"}, Annotations: map[string]string{"summary": "\xff"}},
		{Status: "firing", StartsAt: t0, Labels: map[string]string{"alertname": "A"}, Fingerprint: "f\x00"},
		{Status: "firing", StartsAt: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC), Labels: map[string]string{"alertname": "A"}},
	} {
		_, err := s.Ingest(ctx, message(alert("firing", "ok", t0, time.Time{}), a), incidents.IntakeOptions{})
		assert.ErrorIs(t, err, incidents.ErrInvalid, "%+v", a)
	}
	assert.Equal(t, before, tableDigest(t, pool), "the whole message is checked before anything is written")
}
