package promflowtest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/internal/testutil"
	"github.com/promflow/promflow/promflowtest"
	"github.com/promflow/promflow/promquery"
)

// startPipeline brings up the whole flow on free ports with a 1 s scrape
// interval and a database of the test's own.
func startPipeline(t *testing.T) *promflowtest.RunningPipeline {
	t.Helper()
	return promflowtest.Pipeline(t, promflowtest.PipelineOptions{})
}

func get(t *testing.T, url string) (int, string, http.Header) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b), resp.Header
}

func post(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "text/plain", nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

type wsMessage struct {
	Type      string                     `json:"type"`
	Message   string                     `json:"message"`
	Timestamp string                     `json:"timestamp"`
	Data      map[string]json.RawMessage `json:"data"`
}

// TestSeedE2E runs the 19 checks of the seed's E2E report against the
// pipeline, then the alert → incident loop, with a 1 s scrape interval.
func TestSeedE2E(t *testing.T) {
	p := startPipeline(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	prom, err := promquery.New(p.PrometheusURL, promquery.Options{})
	require.NoError(t, err)
	defer prom.Close()

	// Connect the WebSocket client first so the incident event of the
	// alert loop cannot be missed.
	ws, _, err := websocket.Dial(ctx, strings.Replace(p.ServiceURL, "http://", "ws://", 1), nil)
	require.NoError(t, err)
	defer ws.CloseNow()
	ws.SetReadLimit(1 << 20)
	msgs := make(chan wsMessage, 256)
	go func() {
		defer close(msgs)
		for {
			_, b, err := ws.Read(ctx)
			if err != nil {
				return
			}
			var m wsMessage
			if json.Unmarshal(b, &m) == nil {
				msgs <- m
			}
		}
	}()
	next := func(typ string, cond func(wsMessage) bool) wsMessage {
		t.Helper()
		for {
			select {
			case m, ok := <-msgs:
				require.True(t, ok, "WebSocket closed while waiting for %s", typ)
				if m.Type == typ && (cond == nil || cond(m)) {
					return m
				}
			case <-ctx.Done():
				t.Fatalf("no %s message: %v", typ, ctx.Err())
			}
		}
	}

	t.Run("stage1_mock_metrics", func(t *testing.T) {
		code, body, hdr := get(t, p.MockURL+"/health")
		assert.Equal(t, 200, code)
		assert.Equal(t, "Mock Metrics Service is UP!", body)
		assert.Contains(t, hdr.Get("Content-Type"), "text/plain")

		code, body, _ = get(t, p.MockURL+"/metrics")
		require.Equal(t, 200, code)
		parser := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
		require.NoError(t, err)
		assert.GreaterOrEqual(t, len(fams), 53, "the seed exposed 53 metrics")
		for _, name := range []string{"process_cpu_seconds_total", "process_resident_memory_bytes", "go_goroutines", "mock_high_memory_usage_bytes", "mock_high_cpu_usage_percent", "mock_disk_usage_percent"} {
			assert.Contains(t, fams, name)
		}

		for _, route := range []string{"/simulate/memory-usage/78", "/simulate/cpu-usage/78", "/simulate/disk-usage/sda/85"} {
			code, body := post(t, p.MockURL+route)
			assert.Equal(t, 200, code, "%s: %s", route, body)
		}
	})

	t.Run("stage2_prometheus", func(t *testing.T) {
		require.NoError(t, prom.Healthy(ctx))
		target, err := prom.WaitTargetUp(ctx, "mock-metrics", "")
		require.NoError(t, err)
		assert.Equal(t, "up", string(target.Health))
		for q, want := range map[string]float64{
			`mock_high_memory_usage_bytes{instance="mock-app-1",service="mock-service"}`: 78,
			`mock_high_cpu_usage_percent{instance="mock-app-1",service="mock-service"}`:  78,
			`mock_disk_usage_percent{device="sda",mountpoint="/data"}`:                   85,
		} {
			v, err := prom.WaitForValue(ctx, q, func(v model.Vector) bool { return len(v) == 1 && float64(v[0].Value) == want })
			require.NoError(t, err, q)
			assert.Equal(t, want, float64(v[0].Value), q)
		}
	})

	t.Run("stage3_service_metrics", func(t *testing.T) {
		code, body, _ := get(t, p.ServiceURL+"/health")
		assert.Equal(t, 200, code)
		var health map[string]string
		require.NoError(t, json.Unmarshal([]byte(body), &health))
		assert.Equal(t, "ok", health["status"])
		_, err := time.Parse(time.RFC3339, health["timestamp"])
		assert.NoError(t, err)

		code, body, _ = get(t, p.ServiceURL+"/metrics")
		assert.Equal(t, 200, code)
		for _, name := range []string{"service_metrics_collected_total", "service_metrics_errors_total", "service_metrics_poll_duration_seconds"} {
			assert.Contains(t, body, name)
		}

		// The seed's example incidents: acknowledged after 5 min 30 s,
		// resolved after 1 h 15 min, written as the original platform did.
		_, err = p.Service.Store().Pool().Exec(ctx, `INSERT INTO incidents (title, severity, source, status, created_at, acknowledged_at, resolved_at)
			VALUES ('disk latency', 'warning', 'db-monitor', 'resolved', now() - interval '2 hours', now() - interval '2 hours' + interval '330 seconds', now() - interval '2 hours' + interval '4500 seconds')`)
		require.NoError(t, err)

		code, body, _ = get(t, p.ServiceURL+"/api/metrics/incidents/by-service")
		assert.Equal(t, 200, code)
		var bySvc struct {
			Status string           `json:"status"`
			Data   []map[string]any `json:"data"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &bySvc))
		assert.Equal(t, "success", bySvc.Status)
		require.NotEmpty(t, bySvc.Data)
		assert.Equal(t, map[string]any{"service": "db-monitor", "total_incidents": 1.0, "open_count": 0.0, "ack_count": 0.0, "resolved_count": 1.0}, bySvc.Data[0])

		code, body, _ = get(t, p.ServiceURL+"/api/metrics/incidents/details")
		assert.Equal(t, 200, code)
		var details struct {
			Status string           `json:"status"`
			Data   []map[string]any `json:"data"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &details))
		assert.Equal(t, "success", details.Status)
		require.Len(t, details.Data, 1)
		assert.Equal(t, 330.0, details.Data[0]["mtta_seconds"])
		assert.Equal(t, 4500.0, details.Data[0]["mttr_seconds"])
	})

	t.Run("stage4_websocket", func(t *testing.T) {
		m := next("connection", nil)
		assert.Equal(t, "Connected to service-metrics", m.Message)
		m = next("instant_metrics", nil)
		for _, name := range []string{"prometheus_tsdb_head_series", "prometheus_engine_queries", "http_requests_total"} {
			assert.Contains(t, m.Data, name)
		}
		_, err := time.Parse(time.RFC3339, m.Timestamp)
		assert.NoError(t, err)
	})

	t.Run("stage5_flow", func(t *testing.T) {
		// Metrics reached Prometheus (checked in stage 2) and service-metrics
		// broadcasts them: wait for a message carrying the simulated values.
		m := next("instant_metrics", func(m wsMessage) bool {
			return sampleValue(m.Data["mock_high_memory_usage_bytes"]) == "78" &&
				sampleValue(m.Data["mock_high_cpu_usage_percent"]) == "78" &&
				sampleValue(m.Data["mock_disk_usage_percent"]) == "85"
		})
		assert.Contains(t, string(m.Data["prometheus_tsdb_head_series"]), `"resultType":"vector"`)
	})

	t.Run("alert_to_incident", func(t *testing.T) {
		code, _ := post(t, p.MockURL+"/simulate/memory-usage/95")
		require.Equal(t, 200, code)
		// Prometheus fires HighMemoryUsage, Alertmanager posts the webhook,
		// an incident opens and its event reaches the WebSocket client.
		ev := next("incident", func(m wsMessage) bool {
			return strings.Contains(string(m.Data["incident"]), "mock-service") && strings.Contains(string(m.Data["kind"]), "opened")
		})
		var inc struct {
			ID     string `json:"id"`
			Title  string `json:"title"`
			Status string `json:"status"`
		}
		require.NoError(t, json.Unmarshal(ev.Data["incident"], &inc))
		assert.Equal(t, "open", inc.Status)
		assert.Contains(t, inc.Title, "High memory usage on mock-app-1")

		// Back to normal: the alert resolves and so does the incident.
		code, _ = post(t, p.MockURL+"/simulate/memory-usage/50")
		require.Equal(t, 200, code)
		next("incident", func(m wsMessage) bool {
			return strings.Contains(string(m.Data["id"]), inc.ID) && strings.Contains(string(m.Data["status"]), "resolved")
		})
		code, body, _ := get(t, p.ServiceURL+"/api/incidents/"+inc.ID)
		assert.Equal(t, 200, code)
		assert.Contains(t, body, `"status":"resolved"`)
	})
}

// sampleValue returns the value of the single sample of a vector result, or "".
func sampleValue(raw json.RawMessage) string {
	var r struct {
		Result []struct {
			Value [2]any `json:"value"`
		} `json:"result"`
	}
	if json.Unmarshal(raw, &r) != nil || len(r.Result) != 1 {
		return ""
	}
	s, _ := r.Result[0].Value[1].(string)
	return s
}

// TestAlertRules checks the shipped rules with promtool and runs their unit
// tests (rules_test.yml) through RuleTest.
func TestAlertRules(t *testing.T) {
	promtool, err := promflowtest.LookBinary("promtool", "prometheus")
	if err != nil {
		testutil.SkipOrFail(t, "%v", err)
	}
	out, err := exec.Command(promtool, "check", "rules", "rules.yml").CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Empty(t, promflowtest.RuleTest(t, "rules_test.yml"))
}

// TestGeneratedConfigIsValid checks the Prometheus config the pipeline
// generates with promtool check config.
func TestGeneratedConfigIsValid(t *testing.T) {
	promtool, err := promflowtest.LookBinary("promtool", "prometheus")
	if err != nil {
		testutil.SkipOrFail(t, "%v", err)
	}
	dir := t.TempDir()
	cfg := promflowtest.PrometheusOptions{
		DataDir:       dir,
		ScrapeConfigs: []promflowtest.ScrapeConfig{{JobName: "mock-metrics", Targets: []string{"127.0.0.1:8082"}, HonorLabels: true}},
		RuleFiles:     map[string]string{"mock-alerts.yml": promflowtest.AlertRules},
		Alertmanagers: []string{"127.0.0.1:9093"},
	}
	b, err := promflowtest.PrometheusConfigFile(cfg)
	require.NoError(t, err)
	conf := filepath.Join(dir, "prometheus.yml")
	require.NoError(t, writeFile(conf, b))
	require.NoError(t, writeFile(filepath.Join(dir, "mock-alerts.yml"), []byte(promflowtest.AlertRules)))
	out, err := exec.Command(promtool, "check", "config", conf).CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "SUCCESS")
	assert.True(t, bytes.Contains(b, []byte(`"honor_labels": true`)), "mock-metrics keeps its own instance label")
}

// TestStartFailureStopsWhatStarted makes Prometheus fail to start after
// mock-metrics and Alertmanager are up: its address is taken by a server
// that answers /-/ready like a Prometheus (as Debian's own service on :9090
// does). Start must not take that server for its child, must return an
// error saying the address is in use (not panic), and must stop what it
// started, freeing its ports.
func TestStartFailureStopsWhatStarted(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	impostor := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "Prometheus Server is Ready.\n")
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = impostor.Serve(taken) }()
	defer impostor.Close()
	mockAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	amAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p, err := promflowtest.StartPipeline(ctx, promflowtest.PipelineOptions{
		MockAddr:         mockAddr,
		ServiceAddr:      "127.0.0.1:0",
		PrometheusAddr:   taken.Addr().String(),
		AlertmanagerAddr: amAddr,
		DatabaseURL:      promflowtest.DatabaseURL(t),
		DataDir:          t.TempDir(),
	})
	if errors.Is(err, promflowtest.ErrBinaryNotFound) {
		testutil.SkipOrFail(t, "%v", err)
	}
	require.Error(t, err)
	assert.Nil(t, p)
	assert.ErrorIs(t, err, promflowtest.ErrAddrInUse)
	assert.Contains(t, err.Error(), "prometheus")
	for _, addr := range []string{mockAddr, amAddr} {
		ln, err := net.Listen("tcp", addr)
		require.NoError(t, err, "%s still in use after the failed Start", addr)
		ln.Close()
	}
}

// TestChildExitIsReported stops the pipeline's Prometheus from outside
// (its lifecycle API): Err must say so rather than the pipeline going on
// without it.
func TestChildExitIsReported(t *testing.T) {
	p := startPipeline(t)
	code, _ := post(t, p.PrometheusURL+"/-/quit")
	require.Equal(t, http.StatusOK, code)
	select {
	case err := <-p.Err():
		require.Error(t, err)
		assert.Contains(t, err.Error(), "prometheus exited")
	case <-time.After(30 * time.Second):
		t.Fatal("no error on Err() after Prometheus exited")
	}
}
