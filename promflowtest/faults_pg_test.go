package promflowtest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/incidents"
	"github.com/promflow/promflow/internal/testutil"
	"github.com/promflow/promflow/promflowtest"
	"github.com/promflow/promflow/servicemetrics"
)

// Fault drills with a PostgreSQL of the test's own (pgCluster) stopped
// and started under service-metrics.

// wsIncident is a message of topic "incident".
type wsIncident struct {
	Type    string `json:"type"`
	CatchUp bool   `json:"catch_up"`
	Data    struct {
		Kind     string `json:"kind"`
		ID       string `json:"id"`
		Incident *struct {
			Title  string `json:"title"`
			Status string `json:"status"`
		} `json:"incident"`
	} `json:"data"`
}

// incidentFeed connects a WebSocket client to service-metrics and sends
// every incident message it reads on the returned channel, until the
// test ends.
func incidentFeed(t *testing.T, serviceURL string) <-chan wsIncident {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
	defer dcancel()
	c, _, err := websocket.Dial(dctx, "ws"+strings.TrimPrefix(serviceURL, "http")+"/ws", nil)
	require.NoError(t, err)
	c.SetReadLimit(4 << 20)
	out := make(chan wsIncident, 1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(out)
		for {
			_, b, err := c.Read(ctx)
			if err != nil {
				return
			}
			var m wsIncident
			if json.Unmarshal(b, &m) == nil && m.Type == "incident" {
				out <- m
			}
		}
	}()
	t.Cleanup(func() { cancel(); _ = c.CloseNow(); <-done })
	return out
}

// waitIncidentMessage reads feed until a message about id arrives.
func waitIncidentMessage(t *testing.T, feed <-chan wsIncident, id string, timeout time.Duration) wsIncident {
	t.Helper()
	deadline := time.After(timeout)
	var kinds []string
	for {
		select {
		case m, ok := <-feed:
			require.True(t, ok, "WebSocket closed; saw %v", kinds)
			if m.Data.ID == id {
				return m
			}
			kinds = append(kinds, m.Data.Kind)
		case <-deadline:
			t.Fatalf("no incident message for %s within %v; saw kinds %v", id, timeout, kinds)
		}
	}
}

// get returns the status and body of a GET.
func get(url string) (int, string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// assertNoDBInternals checks that body names neither the role, the
// database, the address nor the socket directory of the cluster.
func assertNoDBInternals(t *testing.T, c *pgCluster, what, body string) {
	t.Helper()
	for _, secret := range []string{drillRole, drillDB, c.Addr(), fmt.Sprintf(":%d", c.port), c.root, ".s.PGSQL"} {
		assert.NotContains(t, body, secret, "%s shows a database internal", what)
	}
}

// checkOutage checks service-metrics' answers while PostgreSQL is down:
// REST 503 with a clear message, /metrics 200, /ready 503 with postgres
// down, and no database internals in any body.
func checkOutage(t *testing.T, c *pgCluster, serviceURL string) {
	t.Helper()
	testutil.Eventually(t, 30*time.Second, func() error {
		code, body, err := get(serviceURL + "/api/metrics/incidents/by-service")
		if err != nil {
			return err
		}
		if code != http.StatusServiceUnavailable {
			return fmt.Errorf("by-service %d %s while PostgreSQL is down", code, body)
		}
		return nil
	})
	for _, route := range []string{"/api/metrics/incidents/by-service", "/api/metrics/incidents/details", "/api/metrics/incidents/stats"} {
		code, body, err := get(serviceURL + route)
		require.NoError(t, err)
		assert.Equal(t, http.StatusServiceUnavailable, code, route)
		assert.Contains(t, body, "database unavailable", route)
		assertNoDBInternals(t, c, route, body)
	}
	resp, err := http.Post(serviceURL+"/api/incidents", "application/json", strings.NewReader(`{"title":"during outage","source":"drill"}`))
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "POST /api/incidents: %s", b)
	assert.Contains(t, string(b), "database unavailable")
	assertNoDBInternals(t, c, "POST /api/incidents", string(b))

	code, body, err := get(serviceURL + "/metrics")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, code, "/metrics during the outage")
	assert.Contains(t, body, "go_goroutines")
	assertNoDBInternals(t, c, "/metrics", body)

	code, body, err = get(serviceURL + "/ready")
	require.NoError(t, err)
	assert.Equal(t, http.StatusServiceUnavailable, code)
	_, st, err := readyChecks(serviceURL)
	require.NoError(t, err)
	assert.Equal(t, "down", st["postgres"], body)
	assertNoDBInternals(t, c, "/ready", body)
}

// startService runs service-metrics on pool, served by an httptest
// server; Prometheus is not needed for these drills (its polls fail).
func startService(t *testing.T, pool *pgxpool.Pool, logs *logBuffer) (*servicemetrics.Server, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	svc, err := servicemetrics.New(ctx, servicemetrics.Config{
		PrometheusURL: "http://127.0.0.1:1",
		Pool:          pool,
		PollInterval:  time.Hour,
		Logger:        slog.New(slog.NewTextHandler(logs, nil)),
	})
	require.NoError(t, err)
	srv := httptest.NewServer(svc)
	t.Cleanup(func() {
		srv.Close()
		_ = svc.Close()
		if t.Failed() {
			t.Logf("--- service-metrics log ---\n%s", logs.String())
		}
	})
	return svc, srv.URL
}

func drillPool(t *testing.T, c *pgCluster) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), c.URL())
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

// listenerStart returns when the change feed's connection to PostgreSQL
// started, once it is there.
func listenerStart(t *testing.T, conn *pgx.Conn) time.Time {
	t.Helper()
	var at time.Time
	testutil.Eventually(t, 60*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := conn.QueryRow(ctx, `SELECT backend_start FROM pg_stat_activity
			WHERE application_name = 'promflow-incidents-listener' AND datname = $1
			ORDER BY backend_start DESC LIMIT 1`, drillDB).Scan(&at)
		if errors.Is(err, pgx.ErrNoRows) {
			return errors.New("change feed not reconnected yet")
		}
		return err
	})
	return at
}

// TestDrillPostgresOutage stops PostgreSQL under a running service-metrics
// and starts it again. While it is down: REST 503 with a clear message,
// /metrics 200, nothing of the database in any body. After: an incident
// written while the change feed was disconnected (after PostgreSQL came
// back, before the feed reconnected, which the drill checks in
// pg_stat_activity) reaches a WebSocket client.
func TestDrillPostgresOutage(t *testing.T) {
	c := newPGCluster(t)
	logs := newLogBuffer()
	svc, url := startService(t, drillPool(t, c), logs)
	require.NotNil(t, svc.Store(), "PostgreSQL was up at start")
	feed := incidentFeed(t, url)

	// The feed works before the outage.
	before := createIncident(t, url, "before")
	assert.Equal(t, "opened", waitIncidentMessage(t, feed, before.ID, 30*time.Second).Data.Kind)

	const attempts = 3
	for attempt := 1; ; attempt++ {
		failedBefore := strings.Count(logs.String(), feedRetryLog)
		c.Stop(t)
		checkOutage(t, c, url)
		// Stay down until the feed's reconnection backoff has grown past a
		// second (100 ms doubling: five failures), leaving time to write
		// once PostgreSQL is back before the feed's next attempt.
		testutil.Eventually(t, 30*time.Second, func() error {
			if n := strings.Count(logs.String(), feedRetryLog) - failedBefore; n < 5 {
				return fmt.Errorf("%d feed reconnection failures so far", n)
			}
			return nil
		})
		c.Start(t)
		id, gap := writeInGap(t, c)
		if !gap {
			require.Less(t, attempt, attempts, "the change feed reconnected before the drill could write in the gap, %d times", attempts)
			t.Logf("attempt %d: the feed reconnected before the write; again", attempt)
			continue
		}
		m := waitIncidentMessage(t, feed, id, 60*time.Second)
		assert.True(t, m.CatchUp, "delivered by the catch-up after the resync")
		assert.Equal(t, "opened", m.Data.Kind)
		require.NotNil(t, m.Data.Incident)
		assert.Equal(t, "written in the gap", m.Data.Incident.Title)
		break
	}
	// And the service is whole again: REST 200, /ready's postgres up.
	testutil.Eventually(t, 30*time.Second, func() error {
		code, body, err := get(url + "/api/metrics/incidents/by-service")
		if err != nil || code != http.StatusOK {
			return fmt.Errorf("by-service %d %s %v", code, body, err)
		}
		if _, st, err := readyChecks(url); err != nil || st["postgres"] != "up" {
			return fmt.Errorf("/ready postgres %q %v", st["postgres"], err)
		}
		return nil
	})
	assert.Contains(t, logs.String(), "change feed caught up after reconnect")
}

// feedRetryLog is what the change feed logs when a reconnection fails.
const feedRetryLog = "change feed reconnect failed"

// writeInGap inserts an incident by SQL as soon as PostgreSQL accepts
// connections, and reports whether the change feed connected only after
// the insert committed (so its notification was missed).
func writeInGap(t *testing.T, c *pgCluster) (string, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.URL())
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var id string
	require.NoError(t, conn.QueryRow(ctx, `INSERT INTO incidents (title, source) VALUES ('written in the gap', 'drill') RETURNING id::text`).Scan(&id))
	var committed time.Time
	require.NoError(t, conn.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&committed))
	return id, listenerStart(t, conn).After(committed)
}

// TestDrillPipelineStartsWithPostgresDown starts the pipeline while its
// PostgreSQL is down: it starts, /ready and the API say so (503), and
// once PostgreSQL is started the service migrates and serves without a
// restart; the incident of an alert that fired while it was down opens.
func TestDrillPipelineStartsWithPostgresDown(t *testing.T) {
	c := newPGCluster(t)
	c.Stop(t)
	p, _ := drillPipelineOn(t, c.URL())
	require.Nil(t, p.Service.Store(), "no store before PostgreSQL is reachable")
	code, st, err := readyChecks(p.ServiceURL)
	require.NoError(t, err)
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Equal(t, "down", st["postgres"])
	assert.Equal(t, "up", st["prometheus"])
	assert.Equal(t, "up", st["alertmanager"])
	code, body, err := get(p.ServiceURL + "/api/metrics/incidents/by-service")
	require.NoError(t, err)
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Contains(t, body, "database unavailable")
	assertNoDBInternals(t, c, "by-service", body)

	// An alert that fires while PostgreSQL is down is not lost:
	// Alertmanager retries the webhook that answered 503.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	require.NoError(t, p.Simulate(ctx, "/simulate/memory-usage/95"))
	_, err = p.Receiver.WaitNotification(ctx, func(n promflowtest.Notification) bool {
		return n.HasAlert("firing", promflowtest.Labels{"alertname": "HighMemoryUsage"})
	})
	require.NoError(t, err)
	opened := make(chan error, 1)
	go func() {
		_, err := p.WaitIncidentOpened(ctx, "mock-service") // waits for PostgreSQL first
		opened <- err
	}()

	c.Start(t)
	require.NoError(t, <-opened)
	testutil.Eventually(t, 60*time.Second, func() error {
		code, st, err := readyChecks(p.ServiceURL)
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("/ready %d %v", code, st)
		}
		return nil
	})
	code, body, err = get(p.ServiceURL + "/api/metrics/incidents/by-service")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, code, body)
	select {
	case err := <-p.Err():
		t.Fatalf("pipeline reported: %v", err)
	default:
	}
}

// TestDrillServiceStartsWithPostgresDown: servicemetrics.New succeeds with
// PostgreSQL down and serves once it is started, without a restart.
func TestDrillServiceStartsWithPostgresDown(t *testing.T) {
	c := newPGCluster(t)
	c.Stop(t)
	logs := newLogBuffer()
	svc, url := startService(t, drillPool(t, c), logs)
	assert.Nil(t, svc.Store())
	checkStartOutage := func() {
		code, body, err := get(url + "/api/metrics/incidents/stats")
		require.NoError(t, err)
		assert.Equal(t, http.StatusServiceUnavailable, code)
		assert.Contains(t, body, "database unavailable")
		assertNoDBInternals(t, c, "stats", body)
		code, body, err = get(url + "/metrics")
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, code)
		assertNoDBInternals(t, c, "/metrics", body)
	}
	checkStartOutage()
	c.Start(t)
	testutil.Eventually(t, 60*time.Second, func() error {
		if svc.Store() == nil {
			return errors.New("not connected yet")
		}
		return nil
	})
	feed := incidentFeed(t, url)
	in := createIncident(t, url, "after start")
	assert.Equal(t, "opened", waitIncidentMessage(t, feed, in.ID, 30*time.Second).Data.Kind)
}

// drillPipelineOn is drillPipeline on the given database.
func drillPipelineOn(t *testing.T, dbURL string) (*promflowtest.RunningPipeline, *logBuffer) {
	t.Helper()
	logs := newLogBuffer()
	p := promflowtest.Pipeline(t, promflowtest.PipelineOptions{DatabaseURL: dbURL, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- pipeline log ---\n%s", logs.String())
		}
	})
	return p, logs
}

// createIncident opens an incident through the REST API.
func createIncident(t *testing.T, serviceURL, title string) incidents.Incident {
	t.Helper()
	body, err := json.Marshal(map[string]string{"title": title, "source": "drill"})
	require.NoError(t, err)
	resp, err := http.Post(serviceURL+"/api/incidents", "application/json", strings.NewReader(string(body)))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	var env struct{ Data incidents.Incident }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&env))
	require.NotEmpty(t, env.Data.ID)
	return env.Data
}
