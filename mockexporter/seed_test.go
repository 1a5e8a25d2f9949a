package mockexporter_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/mockexporter"
)

func TestCatalogueExposedFromFirstScrape(t *testing.T) {
	reg, _ := newTestRegistry(t)
	mfs := scrapeFamilies(t, reg.Handler())
	cat := mockexporter.Catalogue()
	require.Len(t, cat, 26)
	for _, m := range cat {
		mf, ok := mfs[m.Name]
		if !assert.True(t, ok, "%s missing from the first scrape", m.Name) {
			continue
		}
		assert.Equal(t, strings.ToUpper(m.Type.String()), mf.GetType().String(), m.Name)
		require.Len(t, mf.GetMetric(), 1, m.Name)
		var names []string
		for _, lp := range mf.GetMetric()[0].GetLabel() {
			names = append(names, lp.GetName())
			assert.Equal(t, m.Defaults[lp.GetName()], lp.GetValue(), "%s label %s", m.Name, lp.GetName())
		}
		assert.ElementsMatch(t, m.LabelNames, names, m.Name)
	}
	up, ok := sampleValue(mfs, "mock_service_up", map[string]string{"service": "mock-service"})
	require.True(t, ok)
	assert.Equal(t, 1.0, up, "mock_service_up starts up")
	v, ok := sampleValue(mfs, "mock_high_cpu_usage_percent", map[string]string{"instance": "mock-app-1", "service": "mock-service"})
	require.True(t, ok)
	assert.Equal(t, 0.0, v)
	// Runtime collectors are there too.
	assert.Contains(t, mfs, "go_goroutines")
	assert.Contains(t, mfs, "process_cpu_seconds_total")
}

func TestCatalogueMatchesDesign(t *testing.T) {
	// The table of DESIGN.md section 1: name, type, label names.
	want := map[string]string{
		"mock_high_memory_usage_bytes":      "gauge instance,service",
		"mock_memory_leak_detected":         "gauge instance,service",
		"mock_high_cpu_usage_percent":       "gauge instance,service",
		"mock_cpu_spike_detected":           "gauge instance,service",
		"mock_low_cpu_idle_percent":         "gauge instance,service",
		"mock_disk_usage_percent":           "gauge device,mountpoint",
		"mock_disk_read_errors_total":       "counter device",
		"mock_disk_write_errors_total":      "counter device",
		"mock_http_error_rate_percent":      "gauge service,endpoint",
		"mock_http_latency_seconds":         "gauge service,endpoint",
		"mock_service_up":                   "gauge service",
		"mock_connection_drops_total":       "counter service",
		"mock_packet_loss_percent":          "gauge interface",
		"mock_db_connection_failed":         "gauge db_name",
		"mock_db_slow_queries_total":        "gauge db_name",
		"mock_db_high_lock_time_seconds":    "gauge db_name",
		"mock_db_disk_full_percent":         "gauge db_name",
		"mock_pod_crash_loop":               "gauge pod_name,namespace",
		"mock_service_unavailable":          "gauge service_name",
		"mock_queue_backlog_high_count":     "gauge queue_name",
		"mock_cache_miss_rate_percent":      "gauge cache_name",
		"mock_prometheus_scrape_failed":     "gauge job_name,instance",
		"mock_prometheus_target_down":       "gauge job_name,instance",
		"mock_prometheus_tsdb_high_series":  "gauge instance",
		"mock_prometheus_high_memory_bytes": "gauge instance",
		"mock_prometheus_high_cpu_percent":  "gauge instance",
	}
	got := map[string]string{}
	for _, m := range mockexporter.Catalogue() {
		got[m.Name] = m.Type.String() + " " + strings.Join(m.LabelNames, ",")
	}
	assert.Equal(t, want, got)
}

// seedCase is one seed route call and the sample it must produce.
type seedCase struct {
	path   string
	metric string
	labels map[string]string
	want   float64
}

var seedCases = []seedCase{
	{"/simulate/memory-usage/78", "mock_high_memory_usage_bytes", map[string]string{"instance": "mock-app-1", "service": "mock-service"}, 78},
	{"/simulate/memory-leak/1", "mock_memory_leak_detected", map[string]string{"instance": "mock-app-1", "service": "mock-service"}, 1},
	{"/simulate/cpu-usage/78", "mock_high_cpu_usage_percent", map[string]string{"instance": "mock-app-1", "service": "mock-service"}, 78},
	{"/simulate/cpu-spike/1", "mock_cpu_spike_detected", map[string]string{"instance": "mock-app-1", "service": "mock-service"}, 1},
	{"/simulate/low-cpu-idle/3.5", "mock_low_cpu_idle_percent", map[string]string{"instance": "mock-app-1", "service": "mock-service"}, 3.5},
	{"/simulate/disk-usage/sda/85", "mock_disk_usage_percent", map[string]string{"device": "sda", "mountpoint": "/data"}, 85},
	{"/simulate/disk-read-error/sdb", "mock_disk_read_errors_total", map[string]string{"device": "sdb"}, 1},
	{"/simulate/disk-write-error/nvme0n1", "mock_disk_write_errors_total", map[string]string{"device": "nvme0n1"}, 1},
	{"/simulate/http-error-rate/checkout/12.5", "mock_http_error_rate_percent", map[string]string{"service": "checkout", "endpoint": "/api/v1/data"}, 12.5},
	{"/simulate/http-latency/checkout/0.75", "mock_http_latency_seconds", map[string]string{"service": "checkout", "endpoint": "/api/v1/data"}, 0.75},
	{"/simulate/service-up/checkout/0", "mock_service_up", map[string]string{"service": "checkout"}, 0},
	{"/simulate/connection-drops/checkout", "mock_connection_drops_total", map[string]string{"service": "checkout"}, 1},
	{"/simulate/packet-loss/eth1/4", "mock_packet_loss_percent", map[string]string{"interface": "eth1"}, 4},
	{"/simulate/db-connection-failed/orders/1", "mock_db_connection_failed", map[string]string{"db_name": "orders"}, 1},
	{"/simulate/db-slow-queries/orders/42", "mock_db_slow_queries_total", map[string]string{"db_name": "orders"}, 42},
	{"/simulate/db-high-lock-time/orders/2.5", "mock_db_high_lock_time_seconds", map[string]string{"db_name": "orders"}, 2.5},
	{"/simulate/db-disk-full/orders/97", "mock_db_disk_full_percent", map[string]string{"db_name": "orders"}, 97},
	{"/simulate/pod-crash-loop/api-7d9f/1", "mock_pod_crash_loop", map[string]string{"pod_name": "api-7d9f", "namespace": "default"}, 1},
	{"/simulate/service-unavailable/payments/1", "mock_service_unavailable", map[string]string{"service_name": "payments"}, 1},
	{"/simulate/queue-backlog-high/emails/1500", "mock_queue_backlog_high_count", map[string]string{"queue_name": "emails"}, 1500},
	{"/simulate/cache-miss-rate/redis/65", "mock_cache_miss_rate_percent", map[string]string{"cache_name": "redis"}, 65},
	{"/simulate/prometheus-scrape-failed/node/10.0.0.1:9100/1", "mock_prometheus_scrape_failed", map[string]string{"job_name": "node", "instance": "10.0.0.1:9100"}, 1},
	{"/simulate/prometheus-target-down/node/10.0.0.1:9100/1", "mock_prometheus_target_down", map[string]string{"job_name": "node", "instance": "10.0.0.1:9100"}, 1},
	{"/simulate/prometheus-tsdb-high-series/prom-1:9090/2500000", "mock_prometheus_tsdb_high_series", map[string]string{"instance": "prom-1:9090"}, 2500000},
	{"/simulate/prometheus-high-memory/prom-1:9090/8589934592", "mock_prometheus_high_memory_bytes", map[string]string{"instance": "prom-1:9090"}, 8589934592},
	{"/simulate/prometheus-high-cpu/prom-1:9090/91", "mock_prometheus_high_cpu_percent", map[string]string{"instance": "prom-1:9090"}, 91},
}

func TestSeedRoutes(t *testing.T) {
	require.Len(t, seedCases, 26)
	covered := map[string]bool{}
	for _, tc := range seedCases {
		t.Run(strings.TrimPrefix(tc.path, "/simulate/"), func(t *testing.T) {
			reg, _ := newTestRegistry(t)
			h := reg.Handler()
			rec := do(t, h, http.MethodPost, tc.path, "")
			require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
			assert.Equal(t, "text/plain; charset=utf-8", rec.Header().Get("Content-Type"))
			assert.Contains(t, rec.Body.String(), tc.metric)
			got, ok := sampleValue(scrapeFamilies(t, h), tc.metric, tc.labels)
			require.True(t, ok, "no %s%v in the exposition", tc.metric, tc.labels)
			assert.Equal(t, tc.want, got)
		})
		covered[strings.Split(strings.TrimPrefix(tc.path, "/simulate/"), "/")[0]] = true
	}
	for _, r := range mockexporter.SeedRoutes() {
		assert.True(t, covered[r.Name], "route %s not covered", r.Pattern())
	}
}

func TestSeedCountersAddOne(t *testing.T) {
	reg, _ := newTestRegistry(t)
	h := reg.Handler()
	for range 3 {
		require.Equal(t, http.StatusOK, do(t, h, http.MethodPost, "/simulate/disk-read-error/sda", "").Code)
	}
	require.Equal(t, http.StatusOK, do(t, h, http.MethodPost, "/simulate/connection-drops/mock-service", "").Code)
	mfs := scrapeFamilies(t, h)
	v, _ := sampleValue(mfs, "mock_disk_read_errors_total", map[string]string{"device": "sda"})
	assert.Equal(t, 3.0, v)
	v, _ = sampleValue(mfs, "mock_connection_drops_total", map[string]string{"service": "mock-service"})
	assert.Equal(t, 1.0, v)
}

func TestSeedMemoryUsageLandsExactly(t *testing.T) {
	// The seed report: /simulate/memory-usage/78 then Prometheus reads 78.
	reg, _ := newTestRegistry(t)
	h := reg.Handler()
	require.Equal(t, http.StatusOK, do(t, h, http.MethodPost, "/simulate/memory-usage/78", "").Code)
	rec := do(t, h, http.MethodGet, "/metrics", "")
	assert.Contains(t, rec.Body.String(), `mock_high_memory_usage_bytes{instance="mock-app-1",service="mock-service"} 78`+"\n")
}

func TestSeedBadInput(t *testing.T) {
	long := strings.Repeat("x", 129)
	cases := []struct {
		name, method, path string
		code               int
		msg                string
	}{
		{"non-numeric", "POST", "/simulate/cpu-usage/abc", 400, "not a finite number"},
		{"NaN", "POST", "/simulate/cpu-usage/NaN", 400, "not a finite number"},
		{"Inf", "POST", "/simulate/memory-usage/Inf", 400, "not a finite number"},
		{"+Inf", "POST", "/simulate/memory-usage/+Inf", 400, "not a finite number"},
		{"-Inf", "POST", "/simulate/memory-usage/-Inf", 400, "not a finite number"},
		{"empty value", "POST", "/simulate/cpu-usage/", 400, "not a finite number"},
		{"negative", "POST", "/simulate/memory-usage/-1", 400, "negative"},
		{"negative percent", "POST", "/simulate/disk-usage/sda/-5", 400, "between 0 and 100"},
		{"percent over 100", "POST", "/simulate/cpu-usage/100.5", 400, "between 0 and 100"},
		{"percent over 100 disk", "POST", "/simulate/disk-usage/sda/101", 400, "between 0 and 100"},
		{"percent over 100 prometheus", "POST", "/simulate/prometheus-high-cpu/p:9090/250", 400, "between 0 and 100"},
		{"status 2", "POST", "/simulate/service-up/checkout/2", 400, "0 or 1"},
		{"status 0.5", "POST", "/simulate/memory-leak/0.5", 400, "0 or 1"},
		{"status -1", "POST", "/simulate/pod-crash-loop/p/-1", 400, "0 or 1"},
		{"fractional count", "POST", "/simulate/queue-backlog-high/q/1.5", 400, "whole number"},
		{"empty label", "POST", "/simulate/disk-usage//85", 400, "must not be empty"},
		{"long label", "POST", "/simulate/disk-usage/" + long + "/85", 400, "longer than 128"},
		{"invalid UTF-8 label", "POST", "/simulate/disk-usage/%ff%fe/85", 400, "UTF-8"},
		{"unknown route", "POST", "/simulate/unknown/1", 404, "no route"},
		{"too many segments", "POST", "/simulate/cpu-usage/1/2", 404, "no route"},
		{"too few segments", "POST", "/simulate/disk-usage/85", 404, "no route"},
		{"wrong method GET", "GET", "/simulate/cpu-usage/78", 405, "POST"},
		{"wrong method PUT", "PUT", "/simulate/disk-read-error/sda", 405, "POST"},
		{"health wrong method", "POST", "/health", 405, "method not allowed"},
		{"metrics wrong method", "DELETE", "/metrics", 405, "method not allowed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reg, _ := newTestRegistry(t)
			before := snapshot(t, reg)
			rec := do(t, reg.Handler(), tc.method, tc.path, "")
			assert.Equal(t, tc.code, rec.Code, rec.Body.String())
			assert.Contains(t, rec.Body.String(), tc.msg)
			assert.True(t, strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain"), rec.Header().Get("Content-Type"))
			if tc.code == 405 {
				assert.NotEmpty(t, rec.Header().Get("Allow"))
			}
			assert.Equal(t, before, snapshot(t, reg), "state changed")
		})
	}
}

func TestHealth(t *testing.T) {
	reg, _ := newTestRegistry(t)
	rec := do(t, reg.Handler(), http.MethodGet, "/health", "")
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "text/plain; charset=utf-8", rec.Header().Get("Content-Type"))
	assert.Equal(t, "Mock Metrics Service is UP!", rec.Body.String())
}

func TestSeedRoutesWithoutCatalogue(t *testing.T) {
	reg := mockexporter.New(mockexporter.Options{Empty: true, Logger: discardLogger()})
	rec := do(t, reg.Handler(), http.MethodPost, "/simulate/cpu-usage/5", "")
	assert.Equal(t, http.StatusNotFound, rec.Code)
	assert.Contains(t, rec.Body.String(), "unknown metric")
}
