package servicemetrics_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/incidents"
	"github.com/promflow/promflow/promflowtest"
	"github.com/promflow/promflow/servicemetrics"
)

// serve starts service-metrics on pool (with a real Prometheus) and
// returns its test server.
func serve(t *testing.T, pool *pgxpool.Pool) *httptest.Server {
	t.Helper()
	prom := promflowtest.Prometheus(t, promflowtest.PrometheusOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	svc, err := servicemetrics.New(ctx, servicemetrics.Config{PrometheusURL: prom.URL, Pool: pool, PollInterval: time.Second, Logger: quietLogger})
	require.NoError(t, err)
	srv := httptest.NewServer(svc)
	t.Cleanup(func() {
		srv.Close()
		assert.NoError(t, svc.Close())
	})
	return srv
}

func fetch(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestOriginalDatabase: service-metrics starts on a database the original
// platform created and wrote (incidents/testdata/original_schema.sql, rows
// as its incident-management writes them: a reopened row keeping
// resolved_at, a row without source, tokens), reports them, creates
// incidents through REST and the webhook, and the original's own INSERT
// still works afterwards.
func TestOriginalDatabase(t *testing.T) {
	pool := promflowtest.Database(t)
	ctx := context.Background()
	schema, err := os.ReadFile("../incidents/testdata/original_schema.sql")
	require.NoError(t, err)
	_, err = pool.Exec(ctx, string(schema))
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `
INSERT INTO incidents (id, title, severity, source, status, ack_token) VALUES
  ('00000000-0000-4000-8000-000000000001', 'disk full', 'critical', 'db-monitor', 'open', 'tok-1'),
  ('00000000-0000-4000-8000-000000000002', 'no source', 'warning', NULL, 'open', 'tok-2');
INSERT INTO incidents (id, title, severity, source, status, resolved_at, created_at) VALUES
  ('00000000-0000-4000-8000-000000000003', 'reopened', 'high', 'db-monitor', 'open', now(), now() - interval '1 hour');`)
	require.NoError(t, err)

	srv := serve(t, pool)
	code, body := fetch(t, http.MethodGet, srv.URL+"/api/metrics/incidents/by-service", "")
	require.Equal(t, http.StatusOK, code, body)
	var bySvc struct {
		Data []map[string]any `json:"data"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &bySvc))
	got := map[string]float64{}
	for _, r := range bySvc.Data {
		got[r["service"].(string)] = r["open_count"].(float64)
	}
	assert.Equal(t, map[string]float64{"db-monitor": 2, incidents.UnknownService: 1}, got, "the reopened row counts as open, NULL source as unknown")

	code, body = fetch(t, http.MethodPost, srv.URL+"/api/incidents", `{"title":"from promflow","severity":"critical","source":"payments"}`)
	assert.Equal(t, http.StatusCreated, code, body)
	code, body = fetch(t, http.MethodPost, srv.URL+servicemetrics.WebhookPath, `{"version":"4","status":"firing","receiver":"r","groupKey":"g",
	  "alerts":[{"status":"firing","labels":{"alertname":"X","service":"api","severity":"critical"},"startsAt":"2026-01-01T00:00:00Z","fingerprint":"abc"}]}`)
	assert.Less(t, code, 300, body)
	_, err = pool.Exec(ctx, `INSERT INTO incidents (id, title, severity, status, ack_token) VALUES ('00000000-0000-4000-8000-000000000009', 'original writes again', 'low', 'open', 'tok-9')`)
	require.NoError(t, err, "the original's INSERT (id supplied, no source) still works")
	var n int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM incidents WHERE source IS NULL`).Scan(&n))
	assert.Equal(t, 2, n, "NULL sources are not rewritten")
}

// TestReadOnlyService: a role that may only read, on a migrated database:
// service-metrics starts, reads answer 200, writes and the webhook 503
// with a message, and /ready says read-only.
func TestReadOnlyService(t *testing.T) {
	dsn := promflowtest.DatabaseURL(t)
	owner := promflowtest.Database(t) // another database: only to get an admin connection
	ctx := context.Background()
	var b [6]byte
	_, _ = rand.Read(b[:])
	role := "promflow_ro_" + hex.EncodeToString(b[:])
	_, err := owner.Exec(ctx, "CREATE ROLE "+pgx.Identifier{role}.Sanitize()+" LOGIN")
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = owner.Exec(context.Background(), "DROP ROLE IF EXISTS "+pgx.Identifier{role}.Sanitize())
	})

	admin, err := pgxpool.New(ctx, dsn)
	require.NoError(t, err)
	require.NoError(t, incidents.Migrate(ctx, admin))
	_, err = admin.Exec(ctx, "GRANT SELECT ON ALL TABLES IN SCHEMA public TO "+pgx.Identifier{role}.Sanitize())
	require.NoError(t, err)
	admin.Close()

	cfg, err := pgxpool.ParseConfig(dsn)
	require.NoError(t, err)
	cfg.ConnConfig.User = role
	ro, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(ro.Close)

	srv := serve(t, ro)
	code, body := fetch(t, http.MethodGet, srv.URL+"/api/metrics/incidents/details", "")
	assert.Equal(t, http.StatusOK, code, body)
	code, body = fetch(t, http.MethodPost, srv.URL+"/api/incidents", `{"title":"x","severity":"critical","source":"s"}`)
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Contains(t, body, "read-only")
	code, body = fetch(t, http.MethodPost, srv.URL+servicemetrics.WebhookPath, `{"version":"4","status":"firing","alerts":[]}`)
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Contains(t, body, "read-only")
	_, body = fetch(t, http.MethodGet, srv.URL+"/ready", "")
	assert.Contains(t, body, `"mode":"read-only"`)
}
