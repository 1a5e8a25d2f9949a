package mockexporter_test

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/promflow/promflow/mockexporter"
)

// A Registry is a prometheus.Collector whose values come from sources,
// computed from its clock at collect time.
func ExampleRegistry() {
	now := time.Date(2026, 2, 10, 5, 35, 0, 0, time.UTC)
	reg := mockexporter.New(mockexporter.Options{Empty: true, Now: func() time.Time { return now }})

	_ = reg.Declare(mockexporter.MetricOptions{
		Name: "app_memory_percent", Type: mockexporter.Gauge, Range: mockexporter.Percent,
		LabelNames: []string{"app"},
	})
	_ = reg.Declare(mockexporter.MetricOptions{Name: "app_errors_total", Type: mockexporter.Counter})

	// Memory ramps from 78% to 95% over 5 minutes; errors arrive at 0.5/s.
	_ = reg.Set("app_memory_percent", mockexporter.Labels{"app": "api"},
		mockexporter.Ramp{From: 78, To: 95, Duration: 5 * time.Minute})
	_ = reg.Set("app_errors_total", nil, mockexporter.Constant(0.5))

	// Out-of-range writes are refused.
	err := reg.SetValue("app_memory_percent", mockexporter.Labels{"app": "api"}, 120)
	fmt.Println(err)

	g := prometheus.NewRegistry()
	g.MustRegister(reg)
	for _, after := range []time.Duration{0, 150 * time.Second, 10 * time.Minute} {
		now = time.Date(2026, 2, 10, 5, 35, 0, 0, time.UTC).Add(after)
		mfs, _ := g.Gather()
		for _, mf := range mfs {
			m := mf.GetMetric()[0]
			fmt.Printf("%v %s %v\n", after, mf.GetName(), m.GetGauge().GetValue()+m.GetCounter().GetValue())
		}
	}
	// Output:
	// mockexporter: invalid value: is a percentage and must be between 0 and 100, got 120
	// 0s app_errors_total 0
	// 0s app_memory_percent 78
	// 2m30s app_errors_total 75
	// 2m30s app_memory_percent 86.5
	// 10m0s app_errors_total 300
	// 10m0s app_memory_percent 95
}

// The Handler serves the seed routes, the control API and /metrics.
func ExampleRegistry_Handler() {
	reg := mockexporter.New(mockexporter.Options{Logger: slog.New(slog.DiscardHandler)})
	srv := httptest.NewServer(reg.Handler())
	defer srv.Close()

	resp, _ := http.Get(srv.URL + "/health")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, string(body))

	resp, _ = http.Post(srv.URL+"/simulate/memory-usage/78", "text/plain", nil)
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Print(resp.StatusCode, " ", string(body))

	resp, _ = http.Post(srv.URL+"/simulate/cpu-usage/abc", "text/plain", nil)
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Print(resp.StatusCode, " ", string(body))

	resp, _ = http.Post(srv.URL+"/api/v1/series", "application/json",
		strings.NewReader(`{"metric":"mock_disk_usage_percent","labels":{"device":"sdb"},"value":85}`))
	resp.Body.Close()

	resp, _ = http.Get(srv.URL + "/metrics")
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, "mock_high_memory_usage_bytes{") || strings.HasPrefix(line, "mock_disk_usage_percent{") {
			fmt.Println(line)
		}
	}
	resp.Body.Close()
	// Output:
	// 200 Mock Metrics Service is UP!
	// 200 mock_high_memory_usage_bytes{instance="mock-app-1",service="mock-service"} set to 78
	// 400 mockexporter: invalid value: "abc" is not a finite number (decimal digits only)
	// mock_disk_usage_percent{device="sda",mountpoint="/data"} 0
	// mock_disk_usage_percent{device="sdb",mountpoint="/data"} 85
	// mock_high_memory_usage_bytes{instance="mock-app-1",service="mock-service"} 78
}

// Scenarios are timed phases, loaded from JSON or YAML.
func ExampleParseScenario() {
	now := time.Date(2026, 2, 10, 5, 35, 0, 0, time.UTC)
	reg := mockexporter.New(mockexporter.Options{Now: func() time.Time { return now }, Logger: slog.New(slog.DiscardHandler)})
	sc, err := mockexporter.ParseScenario([]byte(`
name: memory-incident
phases:
  - at: 0s
    set: [{metric: mock_high_memory_usage_bytes, value: 78}]
  - at: 1m
    set: [{metric: mock_high_memory_usage_bytes, source: {kind: ramp, from: 78, to: 95, duration: 5m}}]
  - at: 10m
    set: [{metric: mock_high_memory_usage_bytes, value: 40}]
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	info, _ := reg.StartScenario(sc)
	start := now
	for _, at := range []time.Duration{0, 3*time.Minute + 30*time.Second, 6 * time.Minute, 12 * time.Minute} {
		now = start.Add(at)
		v, _ := reg.Value("mock_high_memory_usage_bytes", nil)
		fmt.Println(at, v)
	}
	fmt.Println(info.ID, info.Name)
	// Output:
	// 0s 78
	// 3m30s 86.5
	// 6m0s 95
	// 12m0s 40
	// s1 memory-incident
}
