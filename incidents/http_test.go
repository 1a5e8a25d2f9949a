package incidents_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/incidents"
	"github.com/promflow/promflow/internal/testutil"
)

type apiResponse struct {
	Status     string          `json:"status"`
	Data       json.RawMessage `json:"data"`
	NextCursor string          `json:"next_cursor"`
	Error      string          `json:"error"`
}

func do(t *testing.T, h http.Handler, method, target, body string) (int, apiResponse, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, rd)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	raw := rec.Body.String()
	var r apiResponse
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &r), "body %q", raw)
	assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	if rec.Code >= 400 {
		assert.Equal(t, "error", r.Status, raw)
		assert.NotEmpty(t, r.Error)
	} else {
		assert.Equal(t, "success", r.Status, raw)
	}
	return rec.Code, r, raw
}

func TestHTTPSeedShapesAndLifecycle(t *testing.T) {
	clk := newClock(t0)
	s, pool := newStore(t, incidents.Options{Now: clk.Now})
	h := s.Handler()

	code, r, _ := do(t, h, "POST", "/api/incidents", `{"title":"Prometheus target down","severity":"critical","source":"prometheus","description":"job mock","labels":{"job":"mock"}}`)
	require.Equal(t, http.StatusCreated, code)
	var in incidents.Incident
	require.NoError(t, json.Unmarshal(r.Data, &in))
	assert.Equal(t, incidents.StatusOpen, in.Status)
	id := in.ID
	for i := 0; i < 3; i++ {
		code, _, _ = do(t, h, "POST", "/api/incidents", fmt.Sprintf(`{"title":"t%d","severity":"warning","source":"prometheus"}`, i))
		require.Equal(t, http.StatusCreated, code)
	}
	code, _, _ = do(t, h, "POST", "/api/incidents", `{"title":"n","severity":"info","source":"node-exporter"}`)
	require.Equal(t, http.StatusCreated, code)

	clk.Advance(330 * time.Second)
	code, r, _ = do(t, h, "POST", "/api/incidents/"+id+"/acknowledge", "")
	require.Equal(t, http.StatusOK, code)
	clk.Set(t0.Add(4500 * time.Second))
	code, _, _ = do(t, h, "POST", "/api/incidents/"+id+"/resolve", "")
	require.Equal(t, http.StatusOK, code)
	code, r, _ = do(t, h, "POST", "/api/incidents/"+id+"/resolve", "")
	assert.Equal(t, http.StatusConflict, code)
	assert.Contains(t, r.Error, "resolved")
	code, _, _ = do(t, h, "POST", "/api/incidents/"+id+"/acknowledge", "")
	assert.Equal(t, http.StatusConflict, code)
	code, _, _ = do(t, h, "POST", "/api/incidents/00000000-0000-4000-8000-000000000000/resolve", "")
	assert.Equal(t, http.StatusNotFound, code)
	code, r, _ = do(t, h, "GET", "/api/incidents/"+id, "")
	require.Equal(t, http.StatusOK, code)
	require.NoError(t, json.Unmarshal(r.Data, &in))
	assert.Equal(t, incidents.StatusResolved, in.Status)

	// by-service: the seed's exact shape, numbers as numbers.
	code, _, raw := do(t, h, "GET", "/api/metrics/incidents/by-service", "")
	require.Equal(t, http.StatusOK, code)
	assert.JSONEq(t, `{"status":"success","data":[
		{"service":"prometheus","total_incidents":4,"open_count":3,"ack_count":0,"resolved_count":1},
		{"service":"node-exporter","total_incidents":1,"open_count":1,"ack_count":0,"resolved_count":0}]}`, raw)

	// details: newest first, seed keys, mtta/mttr numbers or null.
	code, r, _ = do(t, h, "GET", "/api/metrics/incidents/details", "")
	require.Equal(t, http.StatusOK, code)
	var items []map[string]any
	require.NoError(t, json.Unmarshal(r.Data, &items))
	require.Len(t, items, 5)
	keys := []string{"id", "title", "severity", "source", "status", "created_at", "acknowledged_at", "resolved_at", "mtta_seconds", "mttr_seconds"}
	for _, it := range items {
		assert.Len(t, it, len(keys))
		for _, k := range keys {
			assert.Contains(t, it, k)
		}
	}
	var found bool
	for _, it := range items {
		if it["id"] == id {
			found = true
			assert.Equal(t, 330.0, it["mtta_seconds"])
			assert.Equal(t, 4500.0, it["mttr_seconds"])
		} else {
			assert.Nil(t, it["mtta_seconds"])
			assert.Nil(t, it["mttr_seconds"])
		}
	}
	assert.True(t, found)

	// Closed incidents are excluded unless asked for.
	_, err := pool.Exec(ctxT(t), "UPDATE incidents SET status = 'closed' WHERE id = $1", id)
	require.NoError(t, err)
	_, r, _ = do(t, h, "GET", "/api/metrics/incidents/details", "")
	require.NoError(t, json.Unmarshal(r.Data, &items))
	assert.Len(t, items, 4)
	_, r, _ = do(t, h, "GET", "/api/metrics/incidents/details?status=closed", "")
	require.NoError(t, json.Unmarshal(r.Data, &items))
	assert.Len(t, items, 1)
	code, _, _ = do(t, h, "POST", "/api/incidents/"+id+"/reopen", "")
	assert.Equal(t, http.StatusOK, code)

	// stats
	code, r, _ = do(t, h, "GET", "/api/metrics/incidents/stats?from="+url.QueryEscape(t0.Add(-time.Hour).Format(time.RFC3339))+"&to="+url.QueryEscape(t0.Add(time.Hour).Format(time.RFC3339))+"&service=prometheus", "")
	require.Equal(t, http.StatusOK, code)
	var st incidents.Stats
	require.NoError(t, json.Unmarshal(r.Data, &st))
	assert.Equal(t, int64(4), st.Overall.Incidents)
	require.NotNil(t, st.Overall.MTTA)
	assert.Equal(t, 330.0, st.Overall.MTTA.Mean)
	assert.Nil(t, st.Overall.MTTR, "the only resolved incident was reopened")
	assert.Equal(t, int64(4), st.Overall.StillOpen)

	// An unescaped "+" offset (decoded as a space) is accepted.
	code, r, _ = do(t, h, "GET", "/api/metrics/incidents/stats?from=2026-02-10T05:30:00+01:00&to=2026-02-10T06:30:00+01:00", "")
	require.Equal(t, http.StatusOK, code, r.Error)
	require.NoError(t, json.Unmarshal(r.Data, &st))
	assert.Equal(t, int64(5), st.Overall.Incidents)
	require.NotNil(t, st.From)
	assert.Equal(t, t0.Add(-30*time.Minute), *st.From)
}

func TestHTTPDetailsFiltersAndPagination(t *testing.T) {
	clk := newClock(t0)
	s, _ := newStore(t, incidents.Options{Now: clk.Now})
	ctx := ctxT(t)
	var ids []string
	for i := 0; i < 25; i++ {
		in, err := s.Open(ctx, incidents.NewIncident{Title: fmt.Sprint(i), Source: []string{"a", "b"}[i%2], Severity: []string{"critical", "info", "warning"}[i%3]})
		require.NoError(t, err)
		ids = append(ids, in.ID)
		if i%5 != 0 { // some share a timestamp: the id breaks ties
			clk.Advance(time.Second)
		}
	}
	_, err := s.Acknowledge(ctx, ids[3])
	require.NoError(t, err)
	h := s.Handler()

	var seen []string
	cursor := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 10)
		target := "/api/metrics/incidents/details?limit=7"
		if cursor != "" {
			target += "&cursor=" + url.QueryEscape(cursor)
		}
		code, r, _ := do(t, h, "GET", target, "")
		require.Equal(t, http.StatusOK, code)
		var items []incidents.Detail
		require.NoError(t, json.Unmarshal(r.Data, &items))
		for i, d := range items {
			seen = append(seen, d.ID)
			if i > 0 {
				assert.False(t, d.CreatedAt.After(items[i-1].CreatedAt), "newest first")
			}
		}
		if r.NextCursor == "" {
			break
		}
		cursor = r.NextCursor
	}
	assert.Len(t, seen, 25)
	assert.ElementsMatch(t, ids, seen, "every incident exactly once")

	for q, want := range map[string]int{"service=a": 13, "service=b": 12, "severity=critical": 9, "status=acknowledged": 1, "status=open": 24, "service=a&severity=info": 4, "service=zzz": 0} {
		code, r, _ := do(t, h, "GET", "/api/metrics/incidents/details?"+q, "")
		require.Equal(t, http.StatusOK, code)
		var items []incidents.Detail
		require.NoError(t, json.Unmarshal(r.Data, &items))
		assert.Len(t, items, want, q)
	}
}

func TestHTTPBadInput(t *testing.T) {
	s, pool := newStore(t, incidents.Options{})
	h := incidents.NewHandler(s, incidents.HandlerOptions{MaxBodyBytes: 1024})
	in, err := s.Open(ctxT(t), incidents.NewIncident{Title: "x", Source: "a"})
	require.NoError(t, err)

	cases := []struct {
		method, target, body string
		code                 int
	}{
		{"POST", "/api/incidents", `{"title":"x"`, 400},
		{"POST", "/api/incidents", ``, 400},
		{"POST", "/api/incidents", `{"title":1,"source":"a"}`, 400},
		{"POST", "/api/incidents", `{"title":"x","source":"a","bogus":true}`, 400},
		{"POST", "/api/incidents", `{"title":"x","source":"a"} {}`, 400},
		{"POST", "/api/incidents", `{"title":"","source":"a"}`, 400},
		{"POST", "/api/incidents", `{"title":"x","source":"a","labels":{"k":1}}`, 400},
		{"POST", "/api/incidents", `{"title":"x","source":"a","labels":{"k":""}}`, 400},
		{"POST", "/api/incidents", `{"title":"x","source":"a","labels":{"k":"\xff"}}`, 400},
		{"POST", "/api/incidents", `{"title":"x","source":"a","severity":"` + strings.Repeat("s", 201) + `"}`, 400},
		{"POST", "/api/incidents", `{"title":"` + strings.Repeat("x", 2000) + `","source":"a"}`, 413},
		{"GET", "/api/incidents/not-a-uuid", ``, 400},
		{"POST", "/api/incidents/not-a-uuid/acknowledge", ``, 400},
		{"POST", "/api/incidents/" + in.ID + "/explode", ``, 404},
		{"GET", "/api/incidents/00000000-0000-4000-8000-000000000000", ``, 404},
		{"DELETE", "/api/incidents/" + in.ID, ``, 405},
		{"GET", "/api/incidents", ``, 405},
		{"POST", "/api/metrics/incidents/by-service", ``, 405},
		{"GET", "/api/alertmanager/webhook", ``, 405},
		{"GET", "/api/nope", ``, 404},
		{"GET", "/api/metrics/incidents/details?limit=0", ``, 400},
		{"GET", "/api/metrics/incidents/details?limit=abc", ``, 400},
		{"GET", "/api/metrics/incidents/details?limit=100000", ``, 400},
		{"GET", "/api/metrics/incidents/details?status=weird", ``, 400},
		{"GET", "/api/metrics/incidents/details?cursor=%%%", ``, 400},
		{"GET", "/api/metrics/incidents/details?cursor=bm9wZQ", ``, 400},
		{"GET", "/api/metrics/incidents/stats?from=yesterday", ``, 400},
		{"GET", "/api/metrics/incidents/stats?to=2026-13-01T00:00:00Z", ``, 400},
		{"GET", "/api/metrics/incidents/stats?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", ``, 400},
		{"POST", "/api/alertmanager/webhook", `{"version":"3","alerts":[]}`, 400},
		{"POST", "/api/alertmanager/webhook", `not json`, 400},
		{"POST", "/api/alertmanager/webhook", `{"version":"4","alerts":[{"status":"firing","labels":{"alertname":"A"}}]}`, 400},
	}
	for _, c := range cases {
		code, r, _ := do(t, h, c.method, c.target, c.body)
		assert.Equal(t, c.code, code, "%s %s %.60s: %s", c.method, c.target, c.body, r.Error)
	}
	var n int
	var status string
	require.NoError(t, pool.QueryRow(ctxT(t), "SELECT count(*), min(status) FROM incidents").Scan(&n, &status))
	assert.Equal(t, 1, n, "bad input changed nothing")
	assert.Equal(t, "open", status)
}

func TestHTTPDatabaseOutage(t *testing.T) {
	ctx := ctxT(t)
	// A store whose pool points at a port nothing listens on.
	dead, err := pgxpool.New(ctx, fmt.Sprintf("postgres://postgres@127.0.0.1:%d/x?sslmode=disable&connect_timeout=5", testutil.FreePort(t)))
	require.NoError(t, err)
	defer dead.Close()
	// And a store whose pool was closed after migrating.
	s2, closed := newStore(t, incidents.Options{})
	closed.Close()

	for name, s := range map[string]*incidents.Store{"refused": incidents.NewStore(dead, incidents.Options{Logger: quietLogger}), "closed pool": s2} {
		h := s.Handler()
		for _, c := range []struct{ method, target, body string }{
			{"GET", "/api/metrics/incidents/by-service", ""},
			{"GET", "/api/metrics/incidents/details", ""},
			{"GET", "/api/metrics/incidents/stats", ""},
			{"POST", "/api/incidents", `{"title":"x","source":"a"}`},
			{"GET", "/api/incidents/00000000-0000-4000-8000-000000000000", ""},
			{"POST", "/api/incidents/00000000-0000-4000-8000-000000000000/acknowledge", ""},
			{"POST", "/api/alertmanager/webhook", `{"version":"4","alerts":[{"status":"firing","labels":{"alertname":"A"},"startsAt":"2026-01-01T00:00:00Z"}]}`},
		} {
			code, r, raw := do(t, h, c.method, c.target, c.body)
			assert.Equal(t, http.StatusServiceUnavailable, code, "%s: %s %s", name, c.method, c.target)
			assert.Equal(t, "database unavailable", r.Error)
			for _, leak := range []string{"SELECT", "INSERT", "UPDATE", "incidents_", "127.0.0.1"} {
				assert.NotContains(t, raw, leak)
			}
		}
	}
}
