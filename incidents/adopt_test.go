package incidents_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	promtestutil "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/incidents"
	"github.com/promflow/promflow/promflowtest"
)

// originalDB returns a pool on a new database created from
// testdata/original_schema.sql (the original platform's schema), not
// migrated.
func originalDB(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool := testPool(t, promflowtest.DatabaseURL(t))
	schema, err := os.ReadFile("testdata/original_schema.sql")
	require.NoError(t, err)
	_, err = pool.Exec(ctxT(t), string(schema))
	require.NoError(t, err)
	return pool
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// originalWriter issues the statements the original incident-management
// issues: it supplies ids and tokens, stamps times with NOW(), and its PATCH
// sets a status without touching the timestamps.
type originalWriter struct{ pool *pgxpool.Pool }

// open inserts an open incident; source "" leaves the column out, as the
// original does when it has none.
func (o originalWriter) open(ctx context.Context, title, severity, source string) (string, error) {
	id := newUUID()
	var err error
	if source == "" {
		_, err = o.pool.Exec(ctx, `INSERT INTO incidents (id, title, severity, description, status, labels, ack_token)
			VALUES ($1, $2, $3, $4, 'open', $5, $6)`, id, title, severity, "from the original", `{"origin":"original"}`, randomHex(16))
	} else {
		_, err = o.pool.Exec(ctx, `INSERT INTO incidents (id, title, severity, source, description, status, labels, ack_token)
			VALUES ($1, $2, $3, $4, $5, 'open', $6, $7)`, id, title, severity, source, "from the original", `{"origin":"original"}`, randomHex(16))
	}
	return id, err
}

func (o originalWriter) acknowledge(ctx context.Context, id string) error {
	_, err := o.pool.Exec(ctx, `UPDATE incidents SET status = 'acknowledged', acknowledged_at = NOW(),
		resolve_token = $2, updated_at = NOW() WHERE id = $1`, id, randomHex(16))
	return err
}

func (o originalWriter) resolve(ctx context.Context, id string) error {
	_, err := o.pool.Exec(ctx, `UPDATE incidents SET status = 'resolved', resolved_at = NOW(), updated_at = NOW() WHERE id = $1`, id)
	return err
}

func (o originalWriter) patchStatus(ctx context.Context, id, status string) error {
	_, err := o.pool.Exec(ctx, `UPDATE incidents SET status = $2, updated_at = NOW() WHERE id = $1`, id, status)
	return err
}

// rowsSnapshot is every incidents row as JSON, by id: what "no row is
// rewritten" compares.
func rowsSnapshot(t *testing.T, pool *pgxpool.Pool, columns string) []string {
	t.Helper()
	rows, err := pool.Query(ctxT(t), `SELECT to_jsonb(x)::text FROM (SELECT `+columns+`, xmin::text AS xmin FROM incidents) x ORDER BY x.id`)
	require.NoError(t, err)
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return out
}

const originalColumns = `id, title, severity, source, description, status, labels, assigned_to, ack_token, resolve_token,
	created_at, updated_at, acknowledged_at, resolved_at`

// originalRows fills an original database the way the original writes it
// and returns the ids by name.
func originalRows(t *testing.T, pool *pgxpool.Pool) map[string]string {
	t.Helper()
	ctx := ctxT(t)
	o := originalWriter{pool}
	ids := map[string]string{}
	mk := func(name, title, sev, src string) string {
		id, err := o.open(ctx, title, sev, src)
		require.NoError(t, err, name)
		ids[name] = id
		return id
	}
	mk("open", "Target down", "critical", "prometheus")
	require.NoError(t, o.acknowledge(ctx, mk("acked", "High CPU", "warning", "prometheus")))
	res := mk("resolved", "DB slow", "critical", "db-monitor")
	require.NoError(t, o.acknowledge(ctx, res))
	require.NoError(t, o.resolve(ctx, res))
	// Reopened by the original's PATCH: status open, resolved_at kept.
	re := mk("reopened", "DB connections", "critical", "db-monitor")
	require.NoError(t, o.acknowledge(ctx, re))
	require.NoError(t, o.resolve(ctx, re))
	require.NoError(t, o.patchStatus(ctx, re, "open"))
	// Reopened, then acknowledged again: acknowledged with resolved_at kept.
	reack := mk("reacked", "Queue backlog", "warning", "queue")
	require.NoError(t, o.resolve(ctx, reack))
	require.NoError(t, o.patchStatus(ctx, reack, "acknowledged"))
	mk("nosource", "Something", "info", "")
	nsr := mk("nosource-resolved", "Something else", "info", "")
	require.NoError(t, o.resolve(ctx, nsr))
	// Closed, no times, labels NULL; and resolved by PATCH without a time.
	closed := mk("closed", "Old", "info", "node-exporter")
	_, err := pool.Exec(ctx, `UPDATE incidents SET status = 'closed', labels = NULL WHERE id = $1`, closed)
	require.NoError(t, err)
	require.NoError(t, o.patchStatus(ctx, mk("patched-resolved", "Patched", "warning", "node-exporter"), "resolved"))
	// Durations of realistic size: the original's rows, older.
	_, err = pool.Exec(ctx, `UPDATE incidents SET created_at = created_at - interval '3 hours' WHERE id = ANY($1)`,
		[]string{ids["resolved"], ids["reopened"], ids["acked"]})
	require.NoError(t, err)
	// The original's other tables, linked to an incident.
	alert := newUUID()
	_, err = pool.Exec(ctx, `INSERT INTO alerts (id, source, severity, title, labels) VALUES ($1, 'prometheus', 'critical', 'TargetDown', '{"job":"mock"}')`, alert)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `INSERT INTO incident_alerts (alert_id, incident_id) VALUES ($1, $2)`, alert, ids["open"])
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `INSERT INTO engineers (id, name, email) VALUES ($1, 'Ada', 'ada@example.com')`, newUUID())
	require.NoError(t, err)
	return ids
}

func countRows(t *testing.T, pool *pgxpool.Pool, table string) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(ctxT(t), "SELECT count(*) FROM "+pgx.Identifier{table}.Sanitize()).Scan(&n))
	return n
}

// TestAdoptOriginalSchema: a database created by the original platform's
// schema, with rows written the way the original writes them, is migrated
// without a row changing; promflow then reads it right and writes into it,
// and the original's own statements keep working.
func TestAdoptOriginalSchema(t *testing.T) {
	pool := originalDB(t)
	ctx := ctxT(t)
	ids := originalRows(t, pool)
	before := rowsSnapshot(t, pool, originalColumns)
	extra := map[string]int{"alerts": 1, "incident_alerts": 1, "engineers": 1}

	require.NoError(t, incidents.Migrate(ctx, pool))
	assert.Equal(t, before, rowsSnapshot(t, pool, originalColumns), "no row rewritten (values and xmin unchanged)")
	for table, n := range extra {
		assert.Equal(t, n, countRows(t, pool, table), table)
	}
	var name string
	require.NoError(t, pool.QueryRow(ctx, "SELECT name FROM incidents_schema_migrations WHERE version = 1").Scan(&name))
	assert.Equal(t, "0001_adopt.sql", name)
	var sourceNullable, idDefault string
	require.NoError(t, pool.QueryRow(ctx, `SELECT is_nullable, coalesce(column_default, '') FROM information_schema.columns
		WHERE table_name = 'incidents' AND column_name = 'source'`).Scan(&sourceNullable, new(string)))
	require.NoError(t, pool.QueryRow(ctx, `SELECT coalesce(column_default, '') FROM information_schema.columns
		WHERE table_name = 'incidents' AND column_name = 'id'`).Scan(&idDefault))
	assert.Equal(t, "YES", sourceNullable)
	assert.Contains(t, idDefault, "gen_random_uuid")
	requireRollupsExact(t, pool)

	s := incidents.NewStore(pool, incidents.Options{Logger: quietLogger})
	counts, err := s.ByService(ctx)
	require.NoError(t, err)
	assert.Equal(t, []incidents.ServiceCounts{
		{Service: "db-monitor", Total: 2, Open: 1, Resolved: 1},
		{Service: "node-exporter", Total: 2, Resolved: 1},
		{Service: "prometheus", Total: 2, Open: 1, Acknowledged: 1},
		{Service: "unknown", Total: 2, Open: 1, Resolved: 1},
		{Service: "queue", Total: 1, Acknowledged: 1},
	}, counts)

	// Rows whose status and times disagree are reported by the rules: an
	// open or acknowledged row has no resolution, whatever resolved_at holds.
	for _, name := range []string{"reopened", "reacked"} {
		in, err := s.Get(ctx, ids[name])
		require.NoError(t, err, name)
		assert.Nil(t, in.ResolvedAt, name)
	}
	reopened, err := s.Get(ctx, ids["reopened"])
	require.NoError(t, err)
	assert.Equal(t, incidents.StatusOpen, reopened.Status)
	assert.NotNil(t, reopened.AcknowledgedAt, "the acknowledgement is kept")
	closed, err := s.Get(ctx, ids["closed"])
	require.NoError(t, err)
	assert.Equal(t, map[string]string{}, closed.Labels, "NULL labels read as none")
	page, err := s.Details(ctx, incidents.DetailsQuery{})
	require.NoError(t, err)
	byID := map[string]incidents.Detail{}
	for _, d := range page.Items {
		byID[d.ID] = d
	}
	assert.Len(t, page.Items, 8, "closed excluded")
	assert.Equal(t, "unknown", byID[ids["nosource"]].Source)
	assert.Nil(t, byID[ids["reopened"]].ResolvedAt)
	assert.Nil(t, byID[ids["reopened"]].MTTRSeconds)
	require.NotNil(t, byID[ids["resolved"]].MTTRSeconds)
	assert.Greater(t, *byID[ids["resolved"]].MTTRSeconds, 3*3600.0-60)
	require.NotNil(t, byID[ids["reopened"]].MTTASeconds)
	unknown, err := s.Details(ctx, incidents.DetailsQuery{Service: "unknown"})
	require.NoError(t, err)
	var unknownIDs []string
	for _, d := range unknown.Items {
		unknownIDs = append(unknownIDs, d.ID)
	}
	assert.ElementsMatch(t, []string{ids["nosource"], ids["nosource-resolved"]}, unknownIDs)
	st, err := s.Stats(ctx, incidents.StatsQuery{})
	require.NoError(t, err)
	assert.Equal(t, int64(9), st.Overall.Incidents)
	assert.Equal(t, int64(5), st.Overall.StillOpen, "open + acknowledged, reopened rows included")
	require.NotNil(t, st.Overall.MTTR)
	assert.Equal(t, int64(2), st.Overall.MTTR.Count, "resolved or closed rows with a resolution time")
	stU, err := s.Stats(ctx, incidents.StatsQuery{Service: "unknown", From: time.Now().Add(-24 * time.Hour), To: time.Now().Add(time.Hour)})
	require.NoError(t, err)
	assert.Equal(t, int64(2), stU.Overall.Incidents, "a window's base-table rows count NULL sources as unknown")
	require.Len(t, stU.Services, 1)
	assert.Equal(t, "unknown", stU.Services[0].Service)

	// promflow writes: REST and the webhook create incidents.
	h := incidents.NewHandler(s, incidents.HandlerOptions{Logger: quietLogger})
	code, body := serve(t, h, "POST", "/api/incidents", `{"title":"From promflow","severity":"critical","source":"prometheus"}`)
	require.Equal(t, http.StatusCreated, code, body)
	code, body = serve(t, h, "POST", "/api/alertmanager/webhook", webhookBody("firing", "fp-adopt", "prometheus"))
	require.Equal(t, http.StatusOK, code, body)
	assert.Contains(t, body, `"opened":1`)
	code, body = serve(t, h, "POST", "/api/alertmanager/webhook", webhookBody("resolved", "fp-adopt", "prometheus"))
	require.Equal(t, http.StatusOK, code, body)
	assert.Contains(t, body, `"resolved":1`)
	code, body = serve(t, h, "POST", "/api/incidents/"+ids["reopened"]+"/resolve", "")
	require.Equal(t, http.StatusOK, code, body)
	requireRollupsExact(t, pool)

	// The original keeps writing: its INSERTs (with and without source), its
	// acknowledge, resolve and PATCH, also on incidents promflow created.
	o := originalWriter{pool}
	withSrc, err := o.open(ctx, "After adoption", "critical", "prometheus")
	require.NoError(t, err)
	noSrc, err := o.open(ctx, "After adoption, no source", "warning", "")
	require.NoError(t, err)
	require.NoError(t, o.acknowledge(ctx, withSrc))
	require.NoError(t, o.resolve(ctx, withSrc))
	require.NoError(t, o.patchStatus(ctx, withSrc, "open"))
	require.NoError(t, o.resolve(ctx, noSrc))
	promflowIn, err := s.Open(ctx, incidents.NewIncident{Title: "promflow's", Source: "db-monitor"})
	require.NoError(t, err)
	require.NoError(t, o.acknowledge(ctx, promflowIn.ID))
	require.NoError(t, o.resolve(ctx, promflowIn.ID))
	require.NoError(t, o.patchStatus(ctx, promflowIn.ID, "open"))
	_, err = pool.Exec(ctx, `DELETE FROM incidents WHERE id = $1`, ids["open"])
	require.NoError(t, err, "deleting cascades to incident_alerts")
	assert.Equal(t, 0, countRows(t, pool, "incident_alerts"))
	requireRollupsExact(t, pool)
	got, err := s.Get(ctx, noSrc)
	require.NoError(t, err)
	assert.Equal(t, "unknown", got.Source)
	var stored *string
	require.NoError(t, pool.QueryRow(ctx, "SELECT source FROM incidents WHERE id = $1", noSrc).Scan(&stored))
	assert.Nil(t, stored, "NULL source is not rewritten")

	// Migrating again changes nothing.
	before = rowsSnapshot(t, pool, originalColumns)
	require.NoError(t, incidents.Migrate(ctx, pool))
	assert.Equal(t, before, rowsSnapshot(t, pool, originalColumns))
}

// serve runs one request through h and returns the status and body.
func serve(t *testing.T, h http.Handler, method, path, body string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

func webhookBody(status, fp, service string) string {
	b, _ := json.Marshal(incidents.WebhookMessage{Version: "4", Status: status, Alerts: []incidents.WebhookAlert{{
		Status: status, Fingerprint: fp, StartsAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Labels:      map[string]string{"alertname": "TargetDown", "service": service, "severity": "critical"},
		Annotations: map[string]string{"summary": "Target down"},
	}}})
	return string(b)
}

// TestOriginalWritersOnPromflowSchema: the original's statements also work
// on a table promflow created (it has ack_token and resolve_token, an id
// default, a nullable source).
func TestOriginalWritersOnPromflowSchema(t *testing.T) {
	s, pool := newStore(t, incidents.Options{})
	ctx := ctxT(t)
	o := originalWriter{pool}
	id, err := o.open(ctx, "original", "critical", "")
	require.NoError(t, err)
	require.NoError(t, o.acknowledge(ctx, id))
	require.NoError(t, o.resolve(ctx, id))
	require.NoError(t, o.patchStatus(ctx, id, "open"))
	in, err := s.Get(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, "unknown", in.Source)
	assert.Equal(t, incidents.StatusOpen, in.Status)
	assert.Nil(t, in.ResolvedAt)
	requireRollupsExact(t, pool)
}

// TestRollupsExactWithOriginalWriters: the original's statements and the
// store's lifecycle calls race on an adopted table; the rollups stay equal
// to a GROUP BY.
func TestRollupsExactWithOriginalWriters(t *testing.T) {
	pool := originalDB(t)
	ctx := ctxT(t)
	originalRows(t, pool)
	require.NoError(t, incidents.Migrate(ctx, pool))
	s := incidents.NewStore(pool, incidents.Options{Logger: quietLogger})
	o := originalWriter{pool}
	sources := []string{"", "prometheus", "db-monitor", "unknown"}
	var ids []string
	for i := 0; i < 24; i++ {
		id, err := o.open(ctx, fmt.Sprintf("o%d", i), "warning", sources[i%len(sources)])
		require.NoError(t, err)
		ids = append(ids, id)
	}
	for i := 0; i < 8; i++ {
		in, err := s.Open(ctx, incidents.NewIncident{Title: fmt.Sprintf("p%d", i), Source: sources[1+i%3]})
		require.NoError(t, err)
		ids = append(ids, in.ID)
	}
	errs := make(chan error, 16*40)
	done := make(chan struct{})
	for g := 0; g < 16; g++ {
		go func(g int) {
			defer func() { done <- struct{}{} }()
			for i := 0; i < 40; i++ {
				id := ids[(g*7+i*5)%len(ids)]
				var err error
				switch (g + i) % 7 {
				case 0:
					err = o.acknowledge(ctx, id)
				case 1:
					err = o.resolve(ctx, id)
				case 2:
					err = o.patchStatus(ctx, id, "open")
				case 3:
					_, err = o.open(ctx, "more", "info", sources[i%len(sources)])
				case 4:
					_, err = s.Acknowledge(ctx, id)
				case 5:
					_, err = s.Resolve(ctx, id)
				default:
					_, err = s.Reopen(ctx, id)
				}
				if err != nil && !errors.Is(err, incidents.ErrWrongState) {
					errs <- err
				}
			}
		}(g)
	}
	for g := 0; g < 16; g++ {
		<-done
	}
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	requireRollupsExact(t, pool)
	require.NoError(t, s.RebuildRollups(ctx))
	requireRollupsExact(t, pool)
}

// TestOriginalWriterFeedAndCollector: on an adopted table, a row the
// original writes without source is the service "unknown" in the change
// feed and the collector too.
func TestOriginalWriterFeedAndCollector(t *testing.T) {
	pool := originalDB(t)
	ctx := ctxT(t)
	require.NoError(t, incidents.Migrate(ctx, pool))
	s := incidents.NewStore(pool, incidents.Options{Logger: quietLogger})
	sub, err := s.Subscribe(ctx, incidents.SubscribeOptions{})
	require.NoError(t, err)
	defer sub.Close()
	o := originalWriter{pool}
	id, err := o.open(ctx, "no source", "critical", "")
	require.NoError(t, err)
	ev := nextEvent(t, sub)
	assert.Equal(t, incidents.EventOpened, ev.Kind)
	assert.Equal(t, id, ev.ID)
	assert.Equal(t, "unknown", ev.Source)
	require.NotNil(t, ev.Incident)
	assert.Equal(t, "unknown", ev.Incident.Source)
	require.NoError(t, o.resolve(ctx, id))
	require.NoError(t, o.patchStatus(ctx, id, "open"))
	for _, want := range []incidents.EventKind{incidents.EventResolved, incidents.EventReopened} {
		ev = nextEvent(t, sub)
		assert.Equal(t, want, ev.Kind)
	}

	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(incidents.NewCollector(s, incidents.CollectorOptions{})))
	require.NoError(t, promtestutil.GatherAndCompare(reg, strings.NewReader(`
# HELP promflow_incidents Incidents by service and current status.
# TYPE promflow_incidents gauge
promflow_incidents{service="unknown",status="acknowledged"} 0
promflow_incidents{service="unknown",status="closed"} 0
promflow_incidents{service="unknown",status="open"} 1
promflow_incidents{service="unknown",status="resolved"} 0
`), "promflow_incidents"))
}

// TestAdoptConcurrentMigrate: several processes migrating an original
// database at once adopt it once; the adopt variant's checksum is verified
// like any other.
func TestAdoptConcurrentMigrate(t *testing.T) {
	pool := originalDB(t)
	ctx := ctxT(t)
	originalRows(t, pool)
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		go func() { errs <- incidents.Migrate(ctx, pool) }()
	}
	for i := 0; i < 4; i++ {
		require.NoError(t, <-errs)
	}
	var n int
	require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM incidents_schema_migrations").Scan(&n))
	assert.Equal(t, incidents.SchemaVersion(), n)
	requireRollupsExact(t, pool)

	_, err := pool.Exec(ctx, "UPDATE incidents_schema_migrations SET checksum = NULL WHERE version = 1")
	require.NoError(t, err)
	require.NoError(t, incidents.Migrate(ctx, pool), "a missing checksum is filled from the adopt variant")
	_, err = pool.Exec(ctx, "UPDATE incidents_schema_migrations SET checksum = repeat('0', 64) WHERE version = 1")
	require.NoError(t, err)
	err = incidents.Migrate(ctx, pool)
	require.ErrorIs(t, err, incidents.ErrMigrationChanged)
	assert.Contains(t, err.Error(), "0001_adopt.sql")
}

// TestUpgradeAdoptedByVersion3: an original database that an earlier
// promflow migrated with versions 1-3 (which made source NOT NULL and left
// id without a default, so the original's inserts without source and
// promflow's own inserts failed) is fixed by version 4.
func TestUpgradeAdoptedByVersion3(t *testing.T) {
	pool := originalDB(t)
	ctx := ctxT(t)
	o := originalWriter{pool}
	open, err := o.open(ctx, "open", "critical", "prometheus")
	require.NoError(t, err)
	res, err := o.open(ctx, "resolved", "warning", "db-monitor")
	require.NoError(t, err)
	require.NoError(t, o.acknowledge(ctx, res))
	require.NoError(t, o.resolve(ctx, res))
	// Versions 1-3 as an earlier build applied them.
	_, err = pool.Exec(ctx, `CREATE TABLE incidents_schema_migrations (version integer PRIMARY KEY, name text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now(), checksum text)`)
	require.NoError(t, err)
	for v, name := range []string{"0001_schema.sql", "0002_notify.sql", "0003_statement_rollups.sql"} {
		b, err := os.ReadFile("migrations/" + name)
		require.NoError(t, err)
		_, err = pool.Exec(ctx, string(b))
		require.NoError(t, err, name)
		sum := sha256.Sum256(b)
		_, err = pool.Exec(ctx, "INSERT INTO incidents_schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
			v+1, name, hex.EncodeToString(sum[:]))
		require.NoError(t, err)
	}
	s := incidents.NewStore(pool, incidents.Options{Logger: quietLogger})
	_, err = s.Open(ctx, incidents.NewIncident{Title: "x", Source: "a"})
	require.Error(t, err, "version 3 on the original table: no id default")
	_, err = o.open(ctx, "no source", "info", "")
	require.Error(t, err, "version 3 on the original table: source NOT NULL")

	require.NoError(t, incidents.Migrate(ctx, pool))
	_, err = s.Open(ctx, incidents.NewIncident{Title: "x", Source: "a"})
	require.NoError(t, err)
	_, err = o.open(ctx, "no source", "info", "")
	require.NoError(t, err)
	require.NoError(t, o.patchStatus(ctx, res, "open"), "the original's reopen keeps resolved_at")
	_, err = s.Acknowledge(ctx, open)
	require.NoError(t, err)
	requireRollupsExact(t, pool)
	counts, err := s.ByService(ctx)
	require.NoError(t, err)
	assert.Equal(t, []incidents.ServiceCounts{
		{Service: "a", Total: 1, Open: 1},
		{Service: "db-monitor", Total: 1, Open: 1},
		{Service: "prometheus", Total: 1, Acknowledged: 1},
		{Service: "unknown", Total: 1, Open: 1},
	}, counts)
}
