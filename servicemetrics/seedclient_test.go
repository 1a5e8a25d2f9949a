package servicemetrics_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/promflow/promflow/servicemetrics"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestOriginalEndpointTestClients replays what the original service's
// endpoint test (services/service-metrics/tests/test-endpoints.js) does
// over the WebSocket, as its Node clients do it:
//   - "WebSocket Connection" counts every message that arrives before its
//     close() completes as the welcome: it must see the connection message
//     and nothing else;
//   - "Message Acknowledgment" sends {"type":"subscribe","channel":"metrics"}
//     after the welcome and wants {"type":"ack","requestType":"subscribe"};
//   - "Instant Metrics Broadcast" waits for an instant_metrics message.
func TestOriginalEndpointTestClients(t *testing.T) {
	_, srv, _ := start(t)
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	dial := func(ctx context.Context) *websocket.Conn {
		c, _, err := websocket.Dial(ctx, url, nil)
		require.NoError(t, err)
		c.SetReadLimit(1 << 20)
		return c
	}
	read := func(ctx context.Context, c *websocket.Conn) map[string]any {
		_, b, err := c.Read(ctx)
		require.NoError(t, err)
		var m map[string]any
		require.NoError(t, json.Unmarshal(b, &m))
		return m
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	t.Run("connection only", func(t *testing.T) {
		// Wait until the poller has published, so that snapshots exist.
		c := dial(ctx)
		read(ctx, c)
		for read(ctx, c)["type"] != "instant_metrics" {
		}
		c.CloseNow()

		c = dial(ctx)
		defer c.CloseNow()
		m := read(ctx, c)
		assert.Equal(t, "connection", m["type"])
		assert.Equal(t, "Connected to service-metrics", m["message"])
		assert.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`, m["timestamp"])
		// Close as the Node client does, then read what still arrives
		// before the server's close frame: nothing.
		go func() { _ = c.Close(websocket.StatusNormalClosure, "") }()
		// (The close reply may be taken by Close itself: the read then
		// ends with the connection, not with its status.)
		_, b, err := c.Read(ctx)
		require.Error(t, err, "a message arrived before the close completed: %s", b)
	})

	t.Run("subscribe with channel", func(t *testing.T) {
		c := dial(ctx)
		defer c.CloseNow()
		require.Equal(t, "connection", read(ctx, c)["type"])
		require.NoError(t, c.Write(ctx, websocket.MessageText, []byte(`{"type":"subscribe","channel":"metrics"}`)))
		for {
			m := read(ctx, c)
			require.NotEqual(t, "error", m["type"], "%v", m)
			if m["type"] == "ack" {
				assert.Equal(t, "subscribe", m["requestType"])
				assert.NotEmpty(t, m["timestamp"])
				return
			}
		}
	})

	t.Run("instant metrics", func(t *testing.T) {
		c := dial(ctx)
		defer c.CloseNow()
		for {
			m := read(ctx, c)
			if m["type"] == "instant_metrics" {
				assert.NotEmpty(t, m["data"])
				assert.NotEmpty(t, m["timestamp"])
				return
			}
		}
	})
}

// TestCORSDefaults: the REST API answers cross-origin reads with
// Access-Control-Allow-Origin: * and preflights with 204, as the original;
// a cross-origin write preflight gets no CORS approval.
func TestCORSDefaults(t *testing.T) {
	_, srv, _ := start(t)
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/metrics/incidents/by-service", nil)
	req.Header.Set("Origin", "http://localhost:3000")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "*", resp.Header.Get("Access-Control-Allow-Origin"))

	req, _ = http.NewRequest(http.MethodOptions, srv.URL+"/api/metrics/incidents/details", nil)
	req.Header.Set("Origin", "http://localhost:3000")
	req.Header.Set("Access-Control-Request-Method", "GET")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)
	assert.Equal(t, "*", resp.Header.Get("Access-Control-Allow-Origin"))
	assert.Contains(t, resp.Header.Get("Access-Control-Allow-Methods"), "GET")

	req.Header.Set("Access-Control-Request-Method", "POST")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"), "cross-origin writes are not approved for *")
}

// TestWriteProtection: the attack (a cross-site text/plain POST
// from any page) is refused, a non-JSON body is 415, loopback JSON writes
// work without a token; with Config.WriteToken a write needs the token,
// and the webhook also takes its own token.
func TestWriteProtection(t *testing.T) {
	post := func(url, origin, ctype, auth, body string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
		for k, v := range map[string]string{"Origin": origin, "Content-Type": ctype, "Authorization": auth} {
			if v != "" {
				req.Header.Set(k, v)
			}
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	const incident = `{"title":"x","severity":"critical","source":"payments"}`
	const webhook = `{"version":"4","status":"firing","receiver":"r","groupKey":"g","alerts":[]}`

	t.Run("no token", func(t *testing.T) {
		_, srv, _ := start(t)
		api := srv.URL + "/api/incidents"
		assert.Equal(t, http.StatusForbidden, post(api, "http://evil.example", "text/plain", "", incident))
		assert.Equal(t, http.StatusUnsupportedMediaType, post(api, "", "text/plain", "", incident))
		assert.Equal(t, http.StatusCreated, post(api, "", "application/json", "", incident))
		assert.Equal(t, http.StatusCreated, post(api, srv.URL, "application/json", "", incident), "same-origin page")
	})
	t.Run("tokens", func(t *testing.T) {
		_, srv, _ := startConfig(t, func(c *servicemetrics.Config) {
			c.WriteToken, c.WebhookToken = "w-token", "hook-token"
		})
		api, hook := srv.URL+"/api/incidents", srv.URL+servicemetrics.WebhookPath
		assert.Equal(t, http.StatusUnauthorized, post(api, "", "application/json", "", incident))
		assert.Equal(t, http.StatusUnauthorized, post(api, "", "application/json", "Bearer hook-token", incident))
		assert.Equal(t, http.StatusCreated, post(api, "", "application/json", "Bearer w-token", incident))
		assert.Equal(t, http.StatusUnauthorized, post(hook, "", "application/json", "", webhook))
		assert.NotEqual(t, http.StatusUnauthorized, post(hook, "", "application/json", "Bearer hook-token", webhook))
		assert.NotEqual(t, http.StatusUnauthorized, post(hook, "", "application/json", "Bearer w-token", webhook))
		// Reads need no token.
		resp, err := http.Get(srv.URL + "/api/metrics/incidents/by-service")
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode)
	})
}

// TestMetricsExposeIncidentHealth: /metrics carries the windowed incident
// analytics (incidents.AnalyticsCollector) beside the counts.
func TestMetricsExposeIncidentHealth(t *testing.T) {
	_, srv, _ := start(t)
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/incidents", strings.NewReader(`{"title":"x","severity":"critical","source":"payments"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	resp, err = http.Get(srv.URL + "/metrics")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Contains(t, string(body), `promflow_incidents_ack_within_ratio{`)
	assert.Contains(t, string(body), `service="payments"`)
}
