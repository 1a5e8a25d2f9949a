package mockexporter_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/internal/testutil"
	"github.com/promflow/promflow/mockexporter"
	"github.com/promflow/promflow/promflowtest"
)

// seedLintExceptions are the promtool lint findings caused by names the
// original service chose and that seed compatibility keeps.
var seedLintExceptions = map[string]bool{
	`mock_db_slow_queries_total non-counter metrics should not have "_total" suffix`:                      true,
	`mock_queue_backlog_high_count non-histogram and non-summary metrics should not have "_count" suffix`: true,
}

func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		testutil.SkipOrFail(t, "promtool not found in PATH: install the Debian package prometheus (apt-get install prometheus)")
	}
	return p
}

func checkMetrics(t *testing.T, bin string, exposition []byte) (findings []string, exit int) {
	t.Helper()
	cmd := exec.Command(bin, "check", "metrics")
	cmd.Stdin = bytes.NewReader(exposition)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		exit = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line != "" {
			findings = append(findings, line)
		}
	}
	return findings, exit
}

func TestPromtoolAcceptsExposition(t *testing.T) {
	bin := promtool(t)
	reg, clock := newTestRegistry(t)
	h := reg.Handler()
	for _, tc := range seedCases {
		require.Equal(t, http.StatusOK, do(t, h, "POST", tc.path, "").Code)
	}
	require.NoError(t, reg.Declare(mockexporter.MetricOptions{
		Name: "app_request_duration_seconds", Help: "Request latency.", Type: mockexporter.Histogram,
		Range: mockexporter.NonNegative, LabelNames: []string{"route"}, Defaults: mockexporter.Labels{"route": "/"},
	}))
	require.NoError(t, reg.Set("app_request_duration_seconds", nil, mockexporter.Noise{Seed: 1, Base: 0.3, Amplitude: 0.2}))
	clock.Advance(time.Minute)

	rec := do(t, h, "GET", "/metrics", "")
	require.Equal(t, http.StatusOK, rec.Code)
	findings, exit := checkMetrics(t, bin, rec.Body.Bytes())
	for _, f := range findings {
		assert.True(t, seedLintExceptions[f], "promtool finding: %s", f)
	}
	assert.Contains(t, []int{0, 3}, exit, "promtool exit %d (1 means it could not parse): %v", exit, findings)

	// Without the seed's two legacy names the exposition is lint-clean.
	clean := mockexporter.New(mockexporter.Options{Empty: true, Now: clock.Now, Logger: discardLogger()})
	for _, m := range mockexporter.Catalogue() {
		if m.Name == "mock_db_slow_queries_total" || m.Name == "mock_queue_backlog_high_count" {
			continue
		}
		require.NoError(t, clean.Declare(m))
	}
	require.NoError(t, clean.Declare(mockexporter.MetricOptions{Name: "app_request_duration_seconds", Help: "Request latency.", Type: mockexporter.Histogram}))
	require.NoError(t, clean.Observe("app_request_duration_seconds", nil, 0.2, 0.7))
	rec = do(t, clean.Handler(), "GET", "/metrics", "")
	findings, exit = checkMetrics(t, bin, rec.Body.Bytes())
	assert.Empty(t, findings)
	assert.Equal(t, 0, exit)
}

func TestPrometheusScrapesSimulatedValues(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Prometheus server")
	}
	me := promflowtest.MockExporter(t, mockexporter.Options{})
	reg, srv := me.Registry, me.Server
	target := strings.TrimPrefix(srv.URL, "http://")

	post := func(path string) {
		t.Helper()
		resp, err := http.Post(srv.URL+path, "text/plain", nil)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, path)
	}
	post("/simulate/memory-usage/78")
	post("/simulate/disk-usage/sda/85")
	// A ramp that keeps rising for an hour, so that even a slow start of
	// Prometheus on a loaded machine sees it rising, not holding its end.
	rec := do(t, reg.Handler(), "POST", "/api/v1/series", `{"metric":"mock_high_cpu_usage_percent","source":{"kind":"ramp","from":0,"to":100,"duration":"1h"}}`)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())

	prom := promflowtest.Prometheus(t, promflowtest.PrometheusOptions{
		ScrapeConfigs: []promflowtest.ScrapeConfig{{JobName: "mock-metrics", Targets: []string{target}}},
	})
	client, err := api.NewClient(api.Config{Address: prom.URL})
	require.NoError(t, err)
	papi := v1.NewAPI(client)

	instant := func(q string) (model.Vector, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		v, _, _, err := papi.Query(ctx, q, time.Now())
		if err != nil {
			return nil, err
		}
		vec, ok := v.(model.Vector)
		if !ok {
			return nil, fmt.Errorf("%s: got %s, want a vector", q, v.Type())
		}
		return vec, nil
	}
	expect := func(q string, want float64) func() error {
		return func() error {
			vec, err := instant(q)
			if err != nil {
				return err
			}
			if len(vec) != 1 {
				return fmt.Errorf("%s: %d series", q, len(vec))
			}
			if got := float64(vec[0].Value); got != want {
				return fmt.Errorf("%s = %v, want %v", q, got, want)
			}
			return nil
		}
	}

	testutil.Eventually(t, 30*time.Second, expect(`up{job="mock-metrics"}`, 1))
	// Prometheus renames the exposed instance label to exported_instance
	// (honor_labels is false by default), as the seed pipeline did.
	testutil.Eventually(t, 30*time.Second, expect(`mock_high_memory_usage_bytes{exported_instance="mock-app-1",service="mock-service"}`, 78))
	testutil.Eventually(t, 30*time.Second, expect(`mock_disk_usage_percent{device="sda",mountpoint="/data"}`, 85))

	// The ramp rises across scrapes: the raw samples Prometheus stored are
	// strictly increasing.
	testutil.Eventually(t, 30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		v, _, _, err := papi.Query(ctx, `mock_high_cpu_usage_percent{exported_instance="mock-app-1"}[1m]`, time.Now())
		if err != nil {
			return err
		}
		m, ok := v.(model.Matrix)
		if !ok || len(m) != 1 {
			return fmt.Errorf("want one range series, got %v", v)
		}
		pts := m[0].Values
		if len(pts) < 3 {
			return fmt.Errorf("only %d samples so far", len(pts))
		}
		for i := 1; i < len(pts); i++ {
			if !(pts[i].Value > pts[i-1].Value) {
				return fmt.Errorf("not rising: %v", pts)
			}
		}
		return nil
	})

	// A hidden series goes stale: absent() fires.
	require.NoError(t, reg.SetFaults(mockexporter.Faults{Hide: []mockexporter.SeriesRef{{Metric: "mock_service_up"}}}))
	testutil.Eventually(t, 30*time.Second, expect(`absent(mock_service_up)`, 1))
	// /metrics answering 500 makes the target down.
	require.NoError(t, reg.SetFaults(mockexporter.Faults{Status: http.StatusInternalServerError}))
	testutil.Eventually(t, 30*time.Second, expect(`up{job="mock-metrics"}`, 0))
	require.NoError(t, reg.SetFaults(mockexporter.Faults{}))
	testutil.Eventually(t, 30*time.Second, expect(`up{job="mock-metrics"}`, 1))
}
