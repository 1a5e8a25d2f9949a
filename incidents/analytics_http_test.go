package incidents_test

import (
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/incidents"
)

func getJSON(t *testing.T, srv *httptest.Server, path string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(srv.URL + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	var body map[string]any
	dec := json.NewDecoder(resp.Body)
	dec.UseNumber()
	require.NoError(t, dec.Decode(&body), path)
	return resp.StatusCode, body
}

func getCSV(t *testing.T, srv *httptest.Server, path string, header bool) [][]string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	require.NoError(t, err)
	if header {
		req.Header.Set("Accept", "text/csv")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, path)
	require.True(t, strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv"), resp.Header.Get("Content-Type"))
	recs, err := csv.NewReader(resp.Body).ReadAll()
	require.NoError(t, err)
	return recs
}

// csvEqualsJSON parses the CSV back and checks that it holds the JSON's
// data: same rows in order, each column the JSON value (strings as is,
// numbers equal as numbers, null or absent as an empty field).
func csvEqualsJSON(t *testing.T, recs [][]string, data []any, name string) {
	t.Helper()
	require.NotEmpty(t, recs, name)
	header := recs[0]
	require.Equal(t, len(data)+1, len(recs), "%s: one record per element", name)
	for i, d := range data {
		obj := d.(map[string]any)
		for k := range obj {
			assert.Contains(t, header, k, "%s: every JSON field is a column", name)
		}
		for j, col := range header {
			cell := recs[i+1][j]
			v, ok := obj[col]
			switch x := v.(type) {
			case nil:
				assert.Equal(t, "", cell, "%s row %d %s (present %v)", name, i, col, ok)
			case string:
				assert.Equal(t, x, cell, "%s row %d %s", name, i, col)
			case bool:
				assert.Equal(t, strconv.FormatBool(x), cell, "%s row %d %s", name, i, col)
			case json.Number:
				want, err := x.Float64()
				require.NoError(t, err)
				got, err := strconv.ParseFloat(cell, 64)
				require.NoError(t, err, "%s row %d %s: %q", name, i, col, cell)
				assert.Equal(t, want, got, "%s row %d %s", name, i, col)
			default:
				t.Fatalf("%s: unexpected JSON value %T", name, v)
			}
		}
	}
}

func TestAnalyticsRoutesJSONAndCSV(t *testing.T) {
	s, pool := newStore(t, incidents.Options{})
	loadAnalyticsData(t, s, pool)
	srv := httptest.NewServer(incidents.NewHandler(s, incidents.HandlerOptions{Logger: quietLogger}))
	defer srv.Close()
	win := "from=" + url.QueryEscape("2026-03-22T00:00:00+01:00") + "&to=" + url.QueryEscape("2026-11-02T00:00:00+01:00")
	for _, path := range []string{
		"/api/metrics/incidents/trends?bucket=week&tz=Europe/Paris&" + win,
		"/api/metrics/incidents/trends?bucket=day&tz=Europe/Paris&service=svc-1&ack_within=1m&resolve_within=4h&" + win,
		"/api/metrics/incidents/trends?bucket=month&group_by=service&" + win,
		"/api/metrics/incidents/breakdown?group_by=service&" + win,
		"/api/metrics/incidents/breakdown?group_by=severity&ack_within=300&sort=mtta&order=asc",
		"/api/metrics/incidents/breakdown?group_by=label:team",
		"/api/metrics/incidents/noise?limit=3",
		"/api/metrics/incidents/details?limit=50",
		"/api/metrics/incidents/details?service=svc-2",
	} {
		code, body := getJSON(t, srv, path)
		require.Equal(t, http.StatusOK, code, "%s: %v", path, body)
		require.Equal(t, "success", body["status"], path)
		data, ok := body["data"].([]any)
		require.True(t, ok, path)
		require.NotEmpty(t, data, path)
		recs, recsAccept := getCSV(t, srv, path+"&format=csv", false), getCSV(t, srv, path, true)
		assert.Equal(t, recs, recsAccept, "format=csv and Accept: text/csv agree")
		if path == "/api/metrics/incidents/details?service=svc-2" {
			// Without a limit the export holds every match; the JSON is its
			// first page.
			require.Greater(t, len(recs), len(data)+1)
			recs = recs[:len(data)+1]
		}
		csvEqualsJSON(t, recs, data, path)
	}

	// The fixed field names.
	_, body := getJSON(t, srv, "/api/metrics/incidents/trends?bucket=week&tz=Europe/Paris&service=svc-1&"+win)
	p := body["data"].([]any)[0].(map[string]any)
	for _, f := range []string{"bucket_start", "service", "opened", "acknowledged", "resolved", "mtta_seconds", "mttr_seconds",
		"mttd_seconds", "ack_rate", "ack_within_ratio", "resolve_within_ratio", "mttr_from_start_seconds"} {
		assert.Contains(t, p, f)
	}
	assert.Equal(t, "svc-1", p["service"])
	assert.Equal(t, "2026-03-16T00:00:00+01:00", p["bucket_start"], "the week of from, in the zone")
	_, body = getJSON(t, srv, "/api/metrics/incidents/trends?bucket=week&"+win)
	assert.NotContains(t, body["data"].([]any)[0].(map[string]any), "service", "service only when filtered or grouped")
	_, body = getJSON(t, srv, "/api/metrics/incidents/breakdown?group_by=severity")
	r := body["data"].([]any)[0].(map[string]any)
	for _, f := range []string{"key", "total", "mtta_seconds", "mttr_seconds", "mttd_seconds", "mtta_p50_seconds", "mtta_p90_seconds",
		"mttr_p50_seconds", "mttr_p90_seconds", "ack_within_ratio", "auto_resolved", "reopened"} {
		assert.Contains(t, r, f)
	}

	// Pages of the breakdown follow next_cursor.
	var keys []string
	path := "/api/metrics/incidents/breakdown?group_by=service&limit=2"
	for i := 0; i < 10; i++ {
		_, body := getJSON(t, srv, path)
		for _, d := range body["data"].([]any) {
			keys = append(keys, d.(map[string]any)["key"].(string))
		}
		next, _ := body["next_cursor"].(string)
		if next == "" {
			break
		}
		path = "/api/metrics/incidents/breakdown?group_by=service&limit=2&cursor=" + next
	}
	_, body = getJSON(t, srv, "/api/metrics/incidents/breakdown?group_by=service")
	assert.Len(t, keys, len(body["data"].([]any)))

	// Details CSV streams every matching incident, not one page.
	var n int
	require.NoError(t, pool.QueryRow(ctxT(t), `SELECT count(*) FROM incidents WHERE status <> 'closed'`).Scan(&n))
	recs := getCSV(t, srv, "/api/metrics/incidents/details?format=csv", false)
	assert.Len(t, recs, n+1)
	assert.Equal(t, []string{"id", "title", "severity", "source", "status", "created_at", "acknowledged_at", "resolved_at", "mtta_seconds", "mttr_seconds", "alert_starts_at", "alert_ends_at"}, recs[0])
}

func TestAnalyticsRoutesRejectBadInput(t *testing.T) {
	s, pool := newStore(t, incidents.Options{})
	srv := httptest.NewServer(incidents.NewHandler(s, incidents.HandlerOptions{Logger: quietLogger}))
	defer srv.Close()
	for _, q := range []string{
		"trends?bucket=year", "trends?tz=Mars/Olympus", "trends?tz=Local", "trends?tz=../../etc/passwd",
		"trends?from=yesterday", "trends?to=2026-13-01T00:00:00Z", "trends?ack_within=-5m", "trends?resolve_within=abc",
		"trends?ack_within=9999h", "trends?group_by=label:team", "trends?group_by=team", "trends?bucket=day&from=1900-01-01T00:00:00Z",
		"trends?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", "trends?service=a%00b", "trends?bogus=1",
		"trends?bucket=day&bucket=week", "trends?format=xml", "trends?%zz",
		"breakdown", "breakdown?group_by=", "breakdown?group_by=label:", "breakdown?group_by=host", "breakdown?group_by=service&sort=x",
		"breakdown?group_by=service&order=up", "breakdown?group_by=service&limit=0", "breakdown?group_by=service&limit=x",
		"breakdown?group_by=service&cursor=-1", "breakdown?group_by=label:" + strings.Repeat("k", 300),
		"noise?limit=0", "noise?label=a%00", "details?format=csv&limit=0", "details?format=csv&status=gone",
	} {
		resp, err := http.Get(srv.URL + "/api/metrics/incidents/" + q)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "%s: %s", q, b)
		assert.Contains(t, string(b), `"status":"error"`, q)
	}
	// A label key is a value, never SQL.
	code, body := getJSON(t, srv, "/api/metrics/incidents/breakdown?group_by="+url.QueryEscape("label:team'); DROP TABLE incidents; --"))
	assert.Equal(t, http.StatusOK, code, body)
	_, err := pool.Exec(ctxT(t), "SELECT 1 FROM incidents LIMIT 1")
	require.NoError(t, err)
}
