package promflowtest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/promflowtest"
	"github.com/promflow/promflow/promquery"
)

// TestSeedE2E runs the 19 checks of the seed's E2E report against the
// pipeline, then the alert → incident loop, with a 1 s scrape interval,
// through the same runner as `go run ./examples/pipeline -e2e-report`.
// With PROMFLOW_E2E_REPORT=FILE it also writes the report there.
func TestSeedE2E(t *testing.T) { testSeedE2E(t, startPipeline(t)) }

// TestSeedE2EVictoriaMetrics runs the same checks on the remote-write
// topology: Prometheus scrapes and evaluates the alert rules, and
// remote-writes everything to a VictoriaMetrics child, which
// service-metrics and the seed's three queries read.
func TestSeedE2EVictoriaMetrics(t *testing.T) {
	p := promflowtest.Pipeline(t, promflowtest.PipelineOptions{Backend: promflowtest.BackendVictoriaMetrics})
	require.NotEmpty(t, p.VictoriaMetricsURL)
	require.Equal(t, p.VictoriaMetricsURL, p.QueryURL)
	require.NotNil(t, p.Process("victoria-metrics"))
	testSeedE2E(t, p)

	// The values service-metrics broadcast came from VictoriaMetrics:
	// it holds what Prometheus scraped, under Prometheus' job labels.
	vm, err := promquery.New(p.VictoriaMetricsURL, promquery.Options{})
	require.NoError(t, err)
	defer vm.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, err := vm.WaitForValue(ctx, `up{job="mock-metrics"}`, nil)
	require.NoError(t, err)
	assert.Equal(t, model.SampleValue(1), v[0].Value)
	v, err = vm.WaitForValue(ctx, `mock_high_memory_usage_bytes`, nil)
	require.NoError(t, err)
	assert.NotEmpty(t, v)
}

func testSeedE2E(t *testing.T, p *promflowtest.RunningPipeline) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// The seed's example incident, written as the original platform did:
	// acknowledged after 5 min 30 s, resolved after 1 h 15 min.
	_, err := p.Service.Store().Pool().Exec(ctx, `INSERT INTO incidents (title, severity, source, status, created_at, acknowledged_at, resolved_at)
		VALUES ('disk latency', 'warning', 'db-monitor', 'resolved', now() - interval '2 hours', now() - interval '2 hours' + interval '330 seconds', now() - interval '2 hours' + interval '4500 seconds')`)
	require.NoError(t, err)

	r := promflowtest.RunSeedChecks(ctx, promflowtest.SeedTargets{
		MockURL: p.MockURL, PrometheusURL: p.PrometheusURL, ServiceURL: p.ServiceURL,
		QueryURL: p.QueryURL, AlertLoop: true,
	})
	if path := os.Getenv("PROMFLOW_E2E_REPORT"); path != "" {
		f, err := os.Create(path)
		require.NoError(t, err)
		require.NoError(t, r.WriteMarkdown(f))
		require.NoError(t, f.Close())
		t.Logf("report written to %s", path)
	}

	for _, c := range r.Checks {
		assert.True(t, c.Passed, "stage %d (%s) %q: %s", c.Stage, c.Stage, c.Name, c.Details)
	}
	total, passed, failed := r.Totals()
	assert.Equal(t, 19+4, total, "19 seed checks and 4 of the alert loop")
	assert.Equal(t, total, passed)
	assert.Zero(t, failed)
	assert.True(t, r.Passed())
	t.Logf("%d/%d checks passed in %s", passed, total, r.Duration.Round(time.Millisecond))

	// What the checks observed: the values went all the way through,
	// mock-metrics exposes at least the seed's 53 metrics.
	for _, v := range r.Values {
		assert.True(t, v.PrometheusSeen && v.Prometheus == v.Simulated, "%s in Prometheus: %+v", v.Metric, v)
		assert.True(t, v.ServiceSeen && v.Service == v.Simulated, "%s broadcast by service-metrics: %+v", v.Metric, v)
	}
	assert.GreaterOrEqual(t, r.MetricCount, 53, "the seed exposed 53 metrics")
	_, err = time.Parse(time.RFC3339, r.WebSocketSample)
	assert.NoError(t, err, "instant_metrics timestamp")
	assert.Subset(t, r.WebSocketKeys, []string{"prometheus_tsdb_head_series", "prometheus_engine_queries", "http_requests_total"})
	assert.Contains(t, r.Services, promflowtest.SeedServiceRow{Service: "db-monitor", Total: 1, Resolved: 1})

	// The seed's MTTA/MTTR of the example incident.
	resp, err := http.Get(p.ServiceURL + "/api/metrics/incidents/details")
	require.NoError(t, err)
	defer resp.Body.Close()
	var details struct {
		Data []map[string]any `json:"data"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&details))
	var found bool
	for _, d := range details.Data {
		if d["source"] == "db-monitor" {
			found = true
			assert.Equal(t, 330.0, d["mtta_seconds"])
			assert.Equal(t, 4500.0, d["mttr_seconds"])
		}
	}
	assert.True(t, found, "db-monitor incident in details")

	var md bytes.Buffer
	require.NoError(t, r.WriteMarkdown(&md))
	assert.Contains(t, md.String(), "| **Taux de réussite** | ✅ **100%** |")
}

// TestSeedChecksFailCleanly points the runner at services that answer
// everything wrong (500, HTML, a WebSocket route that is not one): every
// check is still listed, all fail with a reason, nothing panics and the
// run ends within its timeouts.
func TestSeedChecksFailCleanly(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/targets" {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"status":"success","data":{"activeTargets":[{"labels":{"job":"mock-metrics"},"health":"down","lastError":"boom"}]}}`)
			return
		}
		http.Error(w, "<html>nope</html>", http.StatusInternalServerError)
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	r := promflowtest.RunSeedChecks(ctx, promflowtest.SeedTargets{
		MockURL: srv.URL, PrometheusURL: srv.URL, ServiceURL: srv.URL,
		AlertLoop: true, CheckTimeout: 300 * time.Millisecond, AlertTimeout: 300 * time.Millisecond,
	})
	assert.Less(t, time.Since(start), 20*time.Second)
	total, passed, failed := r.Totals()
	assert.Equal(t, 23, total)
	assert.Zero(t, passed)
	assert.Equal(t, total, failed)
	assert.False(t, r.Passed())
	for _, c := range r.Checks {
		assert.NotEmpty(t, c.Details, "%s: a failure says why", c.Name)
	}
	assert.Contains(t, r.Checks[0].Details, "HTTP 500")

	var md bytes.Buffer
	require.NoError(t, r.WriteMarkdown(&md))
	out := md.String()
	assert.Regexp(t, `\| \*\*Tests échoués\*\* +\| 23 +\|`, out)
	assert.Contains(t, out, "❌ **0%**")
	assert.Equal(t, 23, strings.Count(out, "❌ FAILED"))
	assert.Contains(t, out, "n'est pas validé: 23 test(s) en échec")
}

// TestSeedChecksCancelled: an ended context still gives a full report,
// every check failed as not run.
func TestSeedChecksCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := promflowtest.RunSeedChecks(ctx, promflowtest.SeedTargets{MockURL: "http://127.0.0.1:1", PrometheusURL: "http://127.0.0.1:1", ServiceURL: "http://127.0.0.1:1"})
	total, _, failed := r.Totals()
	assert.Equal(t, 19, total)
	assert.Equal(t, 19, failed)
	assert.Contains(t, r.Checks[0].Details, "non exécuté")
}

// TestSeedReportMarkdown writes a report with a failed check whose
// details would break the table: one cell, escaped; totals, rate and the
// per-stage counts follow the checks.
func TestSeedReportMarkdown(t *testing.T) {
	r := &promflowtest.SeedReport{
		Targets:  promflowtest.SeedTargets{MockURL: "http://localhost:8082", PrometheusURL: "http://localhost:9090", ServiceURL: "http://localhost:8005", MockJob: "mock-metrics"},
		Started:  time.Date(2026, 2, 10, 5, 35, 0, 0, time.UTC),
		Duration: 25500 * time.Millisecond,
		Checks: []promflowtest.SeedCheck{
			{Stage: promflowtest.StageMockMetrics, Name: "Health Check", Passed: true, Details: `HTTP 200 - "Mock Metrics Service is UP!"`},
			{Stage: promflowtest.StageMockMetrics, Name: "Metrics Endpoint", Passed: false, Details: "a | b\nc"},
			{Stage: promflowtest.StagePrometheus, Name: "Health Check", Passed: true, Details: "ok"},
			{Stage: promflowtest.StageFlow, Name: "Complete Pipeline Flow", Passed: true, Details: "Flux E2E validé"},
		},
		Values: []promflowtest.SeedValue{{Metric: "mock_high_memory_usage_bytes", Simulated: 78, Prometheus: 78, PrometheusSeen: true}},
	}
	var b bytes.Buffer
	require.NoError(t, r.WriteMarkdown(&b))
	out := b.String()
	for _, want := range []string{
		"# 🔗 Rapport E2E: Flux Mock-Metrics → Prometheus → Service-Metrics",
		"**Date:** 10 Février 2026, 05:35:00 UTC",
		"**Durée totale:** ~25.5 secondes",
		"| **Taux de réussite** | ❌ **75%** |",
		"## 📋 Stage 1: Mock-Metrics Service (Port 8082)",
		"| Health Check     | ✅ PASSED | HTTP 200 - \"Mock Metrics Service is UP!\" |",
		"| Metrics Endpoint | ❌ FAILED | a \\| b c                                 |",
		"## 🔥 Stage 2: Prometheus (Port 9090)",
		"│   localhost:8082    │",
		"   │   - mock_high_memory_usage_bytes = 78\n   │\n   ▼\n✅ Prometheus (9090)",
		"- **Stage 1 (Mock-Metrics):** 1/2 ❌",
		"- **Stage 2 (Prometheus):** 1/1 ✅",
		"- **Stage 5 (E2E Validation):** 1/1 ✅",
		"n'est pas validé: 1 test(s) en échec",
	} {
		assert.Contains(t, out, want)
	}
	assert.NotContains(t, out, "Stage 3", "stages without checks are left out")
	assert.False(t, r.Passed())
	assert.Len(t, r.Failed(), 1)
}
