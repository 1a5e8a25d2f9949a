package promflowtest_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/mockexporter"
	"github.com/promflow/promflow/promflowtest"
)

// TestVictoriaMetrics starts VictoriaMetrics scraping a mockexporter itself
// and a Prometheus that scrapes another one and remote-writes to it: both
// series arrive with the exporters' exact values.
func TestVictoriaMetrics(t *testing.T) {
	scraped := promflowtest.MockExporter(t, mockexporter.Options{Empty: true, DisableRuntimeCollectors: true})
	require.NoError(t, scraped.Declare(mockexporter.MetricOptions{Name: "vm_test_scraped", Help: "Scraped by VictoriaMetrics.", Type: mockexporter.Gauge}))
	require.NoError(t, scraped.SetValue("vm_test_scraped", nil, 42))
	written := promflowtest.MockExporter(t, mockexporter.Options{Empty: true, DisableRuntimeCollectors: true})
	require.NoError(t, written.Declare(mockexporter.MetricOptions{Name: "vm_test_written", Help: "Remote-written by Prometheus.", Type: mockexporter.Gauge, LabelNames: []string{"tag"}}))
	require.NoError(t, written.SetValue("vm_test_written", mockexporter.Labels{"tag": `quote"ü`}, 7.25))

	vm := promflowtest.VictoriaMetrics(t, promflowtest.VictoriaMetricsOptions{
		ScrapeConfigs: []promflowtest.ScrapeConfig{{JobName: "vm-scrape", Targets: []string{scraped.Target}}},
	})
	assert.Equal(t, vm.URL+"/api/v1/write", vm.WriteURL)
	prom := promflowtest.Prometheus(t, promflowtest.PrometheusOptions{
		ScrapeConfigs: []promflowtest.ScrapeConfig{{JobName: "prom-scrape", Targets: []string{written.Target}}},
		RemoteWrite:   []string{vm.WriteURL},
	})

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	require.NoError(t, vm.Client.Ready(ctx))
	v, err := vm.WaitQuery(ctx, `vm_test_scraped`, nil)
	require.NoError(t, err)
	require.Len(t, v, 1)
	assert.Equal(t, model.SampleValue(42), v[0].Value)
	assert.Equal(t, model.LabelValue("vm-scrape"), v[0].Metric["job"])
	assert.Equal(t, model.LabelValue(scraped.Target), v[0].Metric["instance"])

	v, err = vm.WaitQuery(ctx, `vm_test_written{tag="quote\"ü"}`, nil)
	require.NoError(t, err, "prometheus log:\n%s", prom.Log())
	require.Len(t, v, 1)
	assert.Equal(t, model.SampleValue(7.25), v[0].Value)
	assert.Equal(t, model.LabelValue("prom-scrape"), v[0].Metric["job"])

	// A new value goes through too: the write path is live, not a one-off.
	require.NoError(t, written.SetValue("vm_test_written", mockexporter.Labels{"tag": `quote"ü`}, 8.5))
	_, err = vm.WaitQuery(ctx, `vm_test_written`, func(v model.Vector) bool { return len(v) == 1 && v[0].Value == 8.5 })
	require.NoError(t, err)
	// Prometheus' own series are remote-written as well (up of its job).
	_, err = vm.WaitQuery(ctx, `up{job="prom-scrape"}`, func(v model.Vector) bool { return len(v) == 1 && v[0].Value == 1 })
	require.NoError(t, err)
	assert.False(t, strings.Contains(vm.Log(), "cannot unmarshal"), "VictoriaMetrics accepted the config and the writes")
}

// TestVictoriaMetricsBadScrapeConfig: a scrape job without a name is
// refused before anything starts.
func TestVictoriaMetricsBadScrapeConfig(t *testing.T) {
	_, err := promflowtest.StartVictoriaMetrics(context.Background(), promflowtest.VictoriaMetricsOptions{
		DataDir:       t.TempDir(),
		ScrapeConfigs: []promflowtest.ScrapeConfig{{Targets: []string{"127.0.0.1:1"}}},
	})
	require.ErrorContains(t, err, "without job name")
	_, err = promflowtest.StartVictoriaMetrics(context.Background(), promflowtest.VictoriaMetricsOptions{})
	require.ErrorContains(t, err, "DataDir is required")
}
