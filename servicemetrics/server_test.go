package servicemetrics_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/promflow/promflow/internal/testutil"
	"github.com/promflow/promflow/promflowtest"
	"github.com/promflow/promflow/servicemetrics"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// pgxpool's background health check and the HTTP keep-alive
		// connections of http.DefaultClient outlive single tests.
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
	)
}

func start(t *testing.T) (*servicemetrics.Server, *httptest.Server, *promflowtest.PrometheusServer) {
	t.Helper()
	return startConfig(t, nil)
}

// startConfig is start with a Config changed by edit (if not nil).
func startConfig(t *testing.T, edit func(*servicemetrics.Config)) (*servicemetrics.Server, *httptest.Server, *promflowtest.PrometheusServer) {
	t.Helper()
	pool := promflowtest.Database(t)
	prom := promflowtest.Prometheus(t, promflowtest.PrometheusOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := servicemetrics.Config{PrometheusURL: prom.URL, Pool: pool, PollInterval: 200 * time.Millisecond}
	if edit != nil {
		edit(&cfg)
	}
	svc, err := servicemetrics.New(ctx, cfg)
	require.NoError(t, err)
	srv := httptest.NewServer(svc)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, svc.Shutdown(ctx))
		srv.Close()
		http.DefaultClient.CloseIdleConnections()
	})
	return svc, srv, prom
}

func getJSON(t *testing.T, url string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	var body map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	return resp.StatusCode, body
}

func TestRoutes(t *testing.T) {
	_, srv, _ := start(t)

	code, body := getJSON(t, srv.URL+"/health")
	assert.Equal(t, 200, code)
	assert.Equal(t, "ok", body["status"])

	code, body = getJSON(t, srv.URL+"/no/such/route")
	assert.Equal(t, 404, code)
	assert.Equal(t, "error", body["status"])

	// A known route with another method is 405 JSON with Allow, not 404.
	for _, path := range []string{"/", "/health", "/ready", "/metrics"} {
		resp, err := http.Post(srv.URL+path, "text/plain", nil)
		require.NoError(t, err)
		var body map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&body), path)
		resp.Body.Close()
		assert.Equal(t, 405, resp.StatusCode, path)
		assert.Equal(t, "GET, HEAD", resp.Header.Get("Allow"), path)
		assert.Equal(t, "error", body["status"], path)
	}
	req, err := http.NewRequest(http.MethodHead, srv.URL+"/health", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)

	resp, err = http.Get(srv.URL + "/")
	require.NoError(t, err)
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
	assert.Contains(t, resp.Header.Get("Content-Type"), "text/html")
	assert.Contains(t, string(page), "service-metrics")

	code, body = getJSON(t, srv.URL+"/api/metrics/incidents/by-service")
	assert.Equal(t, 200, code)
	assert.Equal(t, "success", body["status"])

	resp, err = http.Get(srv.URL + "/metrics")
	require.NoError(t, err)
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, name := range []string{"service_metrics_collected_total", "service_metrics_errors_total", "service_metrics_poll_duration_seconds", "broadcast_clients", "http_requests_total", "go_goroutines"} {
		assert.Contains(t, string(metrics), name)
	}
}

// TestWebSocketOnRootAndWS checks that the original's clients, which dial
// ws://host:8005 (path "/"), and new ones on /ws get the seed's messages.
func TestWebSocketOnRootAndWS(t *testing.T) {
	_, srv, _ := start(t)
	for _, path := range []string{"/", "/ws"} {
		t.Run(path, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+path, nil)
			require.NoError(t, err)
			defer c.CloseNow()
			c.SetReadLimit(1 << 20)
			var first struct{ Type, Message string }
			_, b, err := c.Read(ctx)
			require.NoError(t, err)
			require.NoError(t, json.Unmarshal(b, &first))
			assert.Equal(t, "connection", first.Type)
			assert.Equal(t, "Connected to service-metrics", first.Message)
			// Both snapshot topics: instant results, and the same queries
			// as range results (the dashboard's chart history).
			seen := map[string]bool{}
			for !seen["instant_metrics"] || !seen["range_metrics"] {
				_, b, err := c.Read(ctx)
				require.NoError(t, err)
				// The type says the shape of "data" (alerts and incident
				// messages have others): read it first.
				var head struct{ Type string }
				require.NoError(t, json.Unmarshal(b, &head))
				want := map[string]string{"instant_metrics": "vector", "range_metrics": "matrix"}[head.Type]
				if want == "" {
					continue
				}
				var m struct {
					Type string
					Data map[string]struct {
						ResultType string `json:"resultType"`
						Error      string `json:"error"`
					}
				}
				require.NoError(t, json.Unmarshal(b, &m))
				require.Contains(t, m.Data, "prometheus_tsdb_head_series", m.Type)
				r := m.Data["prometheus_tsdb_head_series"]
				if r.Error != "" {
					continue // Prometheus may not have scraped itself yet
				}
				assert.Equal(t, want, r.ResultType, m.Type)
				seen[m.Type] = true
			}
		})
	}
}

// TestReadyReportsDependenciesSeparately stops Prometheus: /ready answers
// 503 naming Prometheus down and PostgreSQL up; after a restart, 200.
func TestReadyReportsDependenciesSeparately(t *testing.T) {
	_, srv, prom := start(t)
	code, body := getJSON(t, srv.URL+"/ready")
	assert.Equal(t, 200, code)
	assert.Equal(t, map[string]any{"status": "up"}, body["prometheus"])
	assert.Equal(t, map[string]any{"status": "up"}, body["postgres"])

	require.NoError(t, prom.Stop())
	code, body = getJSON(t, srv.URL+"/ready")
	assert.Equal(t, 503, code)
	assert.Equal(t, "down", body["prometheus"].(map[string]any)["status"])
	assert.Equal(t, map[string]any{"status": "up"}, body["postgres"])

	prom.Restart()
	testutil.Eventually(t, 30*time.Second, func() error {
		if code, _ := getJSON(t, srv.URL+"/ready"); code != 200 {
			return assert.AnError
		}
		return nil
	})
}

// TestIncidentEventsReachWebSocket: a lifecycle change made through the
// REST API is pushed to WebSocket clients on topic "incident".
func TestIncidentEventsReachWebSocket(t *testing.T) {
	_, srv, _ := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/ws", nil)
	require.NoError(t, err)
	defer c.CloseNow()
	c.SetReadLimit(1 << 20)
	_, _, err = c.Read(ctx) // connection
	require.NoError(t, err)

	resp, err := http.Post(srv.URL+"/api/incidents", "application/json", strings.NewReader(`{"title":"db down","severity":"critical","source":"db"}`))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 201, resp.StatusCode)
	for {
		_, b, err := c.Read(ctx)
		require.NoError(t, err)
		var m struct {
			Type string
			Data struct {
				Kind     string
				Incident struct{ Title, Source, Status string }
			}
		}
		require.NoError(t, json.Unmarshal(b, &m))
		if m.Type == "incident" {
			assert.Equal(t, "opened", m.Data.Kind)
			assert.Equal(t, "db down", m.Data.Incident.Title)
			assert.Equal(t, "open", m.Data.Incident.Status)
			return
		}
	}
}
