package servicemetrics_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/internal/testutil"
	"github.com/promflow/promflow/promflowtest"
	"github.com/promflow/promflow/servicemetrics"
)

// replica is one service-metrics of several sharing a database.
type replica struct {
	svc  *servicemetrics.Server
	srv  *httptest.Server
	pool *pgxpool.Pool
}

// startReplica starts a service-metrics on poolURL (its own pool) with
// the config edited by edit (if not nil).
func startReplica(t *testing.T, promURL, poolURL string, edit func(*servicemetrics.Config)) replica {
	t.Helper()
	r, err := newReplica(t, promURL, poolURL, edit)
	require.NoError(t, err)
	return r
}

// newReplica is startReplica returning the error; it may be called from
// any goroutine.
func newReplica(t *testing.T, promURL, poolURL string, edit func(*servicemetrics.Config)) (replica, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, poolURL)
	if err != nil {
		return replica{}, err
	}
	t.Cleanup(pool.Close)
	cfg := servicemetrics.Config{PrometheusURL: promURL, Pool: pool, PollInterval: time.Second, Logger: quietLogger}
	if edit != nil {
		edit(&cfg)
	}
	svc, err := servicemetrics.New(ctx, cfg)
	if err != nil {
		return replica{}, err
	}
	srv := httptest.NewServer(svc)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, svc.Shutdown(ctx))
		srv.Close()
		http.DefaultClient.CloseIdleConnections()
	})
	return replica{svc: svc, srv: srv, pool: pool}, nil
}

// withParam returns dsn with the query parameter key set to value.
func withParam(t *testing.T, dsn, key, value string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

// incidentMsg is a WebSocket message of topic "incident".
type incidentMsg struct {
	Type    string
	CatchUp bool `json:"catch_up"`
	Data    struct {
		Kind       string
		ID         string
		Status     string
		PrevStatus string `json:"prev_status"`
		Incident   *struct{ ID, Title, Status string }
	}
}

// wsClient dials r's /ws and reads the welcome.
func wsClient(t *testing.T, r replica) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(r.srv.URL, "http")+"/ws", nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.CloseNow() })
	c.SetReadLimit(4 << 20)
	_, b, err := c.Read(ctx)
	require.NoError(t, err)
	require.Contains(t, string(b), `"type":"connection"`)
	return c
}

// nextIncident reads c until the next message of topic "incident".
func nextIncident(t *testing.T, c *websocket.Conn, timeout time.Duration) incidentMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		_, b, err := c.Read(ctx)
		require.NoError(t, err, "waiting for an incident event")
		var m incidentMsg
		require.NoError(t, json.Unmarshal(b, &m))
		if m.Type == servicemetrics.TopicIncident {
			return m
		}
	}
}

// post sends a JSON POST to r and returns the status code and the "data"
// of the answer.
func post(t *testing.T, r replica, path, body string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post(r.srv.URL+path, "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	var env struct{ Data map[string]any }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&env))
	return resp.StatusCode, env.Data
}

// lifecycle opens, acknowledges and resolves an incident through r and
// returns its id.
func lifecycle(t *testing.T, r replica, title string) string {
	t.Helper()
	code, in := post(t, r, "/api/incidents", fmt.Sprintf(`{"title":%q,"severity":"critical","source":"replicas"}`, title))
	require.Equal(t, http.StatusCreated, code)
	id := in["id"].(string)
	for _, action := range []string{"acknowledge", "resolve"} {
		code, _ := post(t, r, "/api/incidents/"+id+"/"+action, "")
		require.Equal(t, http.StatusOK, code, action)
	}
	return id
}

// assertLifecycle reads from c the three events of incident id, in order.
func assertLifecycle(t *testing.T, c *websocket.Conn, id, title string) {
	t.Helper()
	want := []struct{ kind, status, prev string }{
		{"opened", "open", ""}, {"acknowledged", "acknowledged", "open"}, {"resolved", "resolved", "acknowledged"},
	}
	for _, w := range want {
		m := nextIncident(t, c, 30*time.Second)
		assert.Equal(t, w.kind, m.Data.Kind)
		assert.Equal(t, id, m.Data.ID)
		assert.Equal(t, w.status, m.Data.Status, w.kind)
		assert.Equal(t, w.prev, m.Data.PrevStatus, w.kind)
		if assert.NotNil(t, m.Data.Incident, w.kind) {
			assert.Equal(t, title, m.Data.Incident.Title)
		}
	}
}

// TestReplicasShareIncidentEvents: an incident opened, acknowledged and
// resolved through replica A reaches the WebSocket clients of replica B
// (and of A), in order, with the statuses of each step.
func TestReplicasShareIncidentEvents(t *testing.T) {
	dsn := promflowtest.DatabaseURL(t)
	prom := promflowtest.Prometheus(t, promflowtest.PrometheusOptions{})
	a := startReplica(t, prom.URL, dsn, nil)
	b := startReplica(t, prom.URL, dsn, nil)
	ca, cb := wsClient(t, a), wsClient(t, b)

	id := lifecycle(t, a, "replicated")
	assertLifecycle(t, cb, id, "replicated")
	assertLifecycle(t, ca, id, "replicated")
	// B serves what A wrote.
	code, body := getJSON(t, b.srv.URL+"/api/incidents/"+id)
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, "resolved", body["data"].(map[string]any)["status"])
}

// clientView is what a WebSocket client knows of the incidents: the status of
// each, patched from events and replaced by a refetch on "resync", as the
// dashboard does.
type clientView struct {
	mu     sync.Mutex
	status map[string]string
}

func (m *clientView) refetch(t *testing.T, base string) {
	t.Helper()
	code, body := getJSON(t, base+"/api/metrics/incidents/details?limit=1000")
	require.Equal(t, http.StatusOK, code)
	st := map[string]string{}
	for _, row := range body["data"].([]any) {
		r := row.(map[string]any)
		st[r["id"].(string)] = r["status"].(string)
	}
	m.mu.Lock()
	m.status = st
	m.mu.Unlock()
}

func (m *clientView) apply(ev incidentMsg) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if ev.Data.ID != "" && ev.Data.Status != "" {
		m.status[ev.Data.ID] = ev.Data.Status
	}
}

// TestReplicaLosesListenConnection: B's LISTEN connection is terminated
// from SQL and kept from reconnecting (the database refuses connections)
// while incidents are written through A, so B's feed sees none of them.
// Once B reconnects its clients get {"type":"incident","data":
// {"kind":"resync"}}, sent after LISTEN is back: a client that refetches
// on it (as the dashboard does) has every change, and the changes after it
// arrive as events again.
func TestReplicaLosesListenConnection(t *testing.T) {
	dsn := promflowtest.DatabaseURL(t)
	prom := promflowtest.Prometheus(t, promflowtest.PrometheusOptions{})
	a := startReplica(t, prom.URL, dsn, nil)
	// B's listener has a name of its own, to terminate it and not A's.
	b := startReplica(t, prom.URL, dsn, func(c *servicemetrics.Config) {
		c.ListenURL = withParam(t, dsn, "application_name", "replica-b-listener")
	})
	cb := wsClient(t, b)
	first := lifecycle(t, a, "before the loss")
	assertLifecycle(t, cb, first, "before the loss")
	view := &clientView{}
	view.refetch(t, b.srv.URL)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// Connections the outage must not need: A's writes and feed, B's
	// reads, this test's SQL.
	for _, p := range []*pgxpool.Pool{a.pool, b.pool} {
		warm(ctx, t, p, 4)
	}
	// The server's own database: a database cannot refuse connections
	// from a session connected to it.
	base := os.Getenv("DATABASE_URL")
	if base == "" {
		base = promflowtest.DefaultDatabaseURL
	}
	admin, err := pgxpool.New(ctx, base)
	require.NoError(t, err)
	defer admin.Close()
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	db := strings.TrimPrefix(u.Path, "/")
	allow := func(on bool) {
		_, err := admin.Exec(ctx, fmt.Sprintf("ALTER DATABASE %s ALLOW_CONNECTIONS %v", pgx.Identifier{db}.Sanitize(), on))
		require.NoError(t, err)
	}
	allow(false)
	defer func() { // before admin closes, should the test fail
		_, _ = admin.Exec(context.Background(), "ALTER DATABASE "+pgx.Identifier{db}.Sanitize()+" ALLOW_CONNECTIONS true")
	}()
	var killed int
	require.NoError(t, admin.QueryRow(ctx, `SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE application_name = 'replica-b-listener' AND query ILIKE 'LISTEN%' AND datname = $1) k`, db).Scan(&killed))
	require.Equal(t, 1, killed)
	testutil.Eventually(t, 10*time.Second, func() error {
		var n int
		if err := admin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name = 'replica-b-listener' AND datname = $1`, db).Scan(&n); err != nil || n != 0 {
			return fmt.Errorf("B's listener still there (%d, %v)", n, err)
		}
		return nil
	})

	// Changes B's feed cannot see.
	var ids []string
	for i := range 4 {
		ids = append(ids, lifecycle(t, a, fmt.Sprintf("during the loss %d", i)))
	}
	code, _ := post(t, a, "/api/incidents/"+ids[0]+"/reopen", "")
	require.Equal(t, http.StatusOK, code)
	truth := &clientView{}
	truth.refetch(t, a.srv.URL)
	allow(true)

	// B's client: the first incident message is the resync.
	ev := nextIncident(t, cb, 30*time.Second)
	require.Equal(t, "resync", ev.Data.Kind, "%+v", ev)
	view.refetch(t, b.srv.URL)
	assert.Equal(t, truth.status, view.status)
	assert.Equal(t, "open", view.status[ids[0]])
	for _, id := range ids[1:] {
		assert.Equal(t, "resolved", view.status[id])
	}

	// Then the changes made during the loss, each as its current state
	// (catch_up): every incident of the loss, with its status now.
	// (Incidents changed just before the loss may come too: the catch-up
	// starts a few seconds before the last change seen.)
	caught := map[string]string{}
	missing := func() bool {
		for _, id := range ids {
			if _, ok := caught[id]; !ok {
				return true
			}
		}
		return false
	}
	for missing() {
		m := nextIncident(t, cb, 30*time.Second)
		require.True(t, m.CatchUp, "a change of the loss not marked catch_up: %+v", m)
		caught[m.Data.ID] = m.Data.Status
	}
	for _, id := range ids {
		assert.Equal(t, truth.status[id], caught[id], id)
	}

	// After the resync, B's feed delivers every change again.
	last := lifecycle(t, a, "after the loss")
	assertLifecycle(t, cb, last, "after the loss")
}

// warm opens n connections of p at once and releases them, so that p
// holds them idle.
func warm(ctx context.Context, t *testing.T, p *pgxpool.Pool, n int) {
	t.Helper()
	var conns []*pgxpool.Conn
	for range n {
		c, err := p.Acquire(ctx)
		require.NoError(t, err)
		conns = append(conns, c)
	}
	for _, c := range conns {
		c.Release()
	}
}

// TestReplicasBehindPgBouncer: two replicas whose pools go through
// PgBouncer in transaction pooling mode (default_query_exec_mode
// cache_describe, the documented setting, and exec) and whose LISTEN and
// migration go to PostgreSQL directly (ListenURL), started at once: both
// come up, the REST API works through PgBouncer and the events reach the
// WebSocket clients of both.
func TestReplicasBehindPgBouncer(t *testing.T) {
	for _, mode := range []string{"cache_describe", "exec"} {
		t.Run(mode, func(t *testing.T) { replicasBehindPgBouncer(t, mode) })
	}
}

func replicasBehindPgBouncer(t *testing.T, mode string) {
	direct := promflowtest.DatabaseURL(t)
	bouncer := withParam(t, testutil.PgBouncer(t, direct, testutil.PgBouncerOptions{PoolSize: 3}), "default_query_exec_mode", mode)
	prom := promflowtest.Prometheus(t, promflowtest.PrometheusOptions{})
	var reps [2]replica
	var errs [2]error
	var wg sync.WaitGroup
	for i := range reps {
		wg.Go(func() {
			reps[i], errs[i] = newReplica(t, prom.URL, bouncer, func(c *servicemetrics.Config) { c.ListenURL = direct })
		})
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs[:]...))
	a, b := reps[0], reps[1]
	ca, cb := wsClient(t, a), wsClient(t, b)
	for i := range 3 {
		title := fmt.Sprintf("through pgbouncer %d", i)
		id := lifecycle(t, a, title)
		assertLifecycle(t, cb, id, title)
		assertLifecycle(t, ca, id, title)
	}
	code, body := getJSON(t, b.srv.URL+"/api/metrics/incidents/by-service")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, fmt.Sprint(body["data"]), "replicas")
	code, body = getJSON(t, b.srv.URL+"/api/metrics/incidents/stats")
	assert.Equal(t, http.StatusOK, code, body)
	code, body = getJSON(t, b.srv.URL+"/ready")
	assert.Equal(t, http.StatusOK, code, body)
}
