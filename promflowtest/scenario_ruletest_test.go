package promflowtest_test

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/promflow/promflow/mockexporter"
	"github.com/promflow/promflow/promflowtest"
)

// memoryPressureScenario is a scenario file as the live pipeline takes it
// (mockmetrics -scenario, POST /api/v1/scenarios).
const memoryPressureScenario = `
name: memory-pressure
phases:
  - at: 0s
    set: [{metric: mock_high_memory_usage_bytes, value: 78}]
  - at: 1m
    set: [{metric: mock_high_memory_usage_bytes, source: {kind: ramp, from: 78, to: 98, duration: 4m}}]
  - at: 8m
    set: [{metric: mock_high_memory_usage_bytes, value: 40}]
`

// TestScenarioDrivesRuleTest renders a scenario as the input_series of a
// promtool rule test for the shipped rules (rules.yml) and runs it with
// RuleTest: HighMemoryUsage fires while the ramp is above 90 and resolves
// when the scenario drops memory to 40.
func TestScenarioDrivesRuleTest(t *testing.T) {
	sc, err := mockexporter.ParseScenario([]byte(memoryPressureScenario))
	require.NoError(t, err)
	reg := mockexporter.New(mockexporter.Options{})
	const interval = 30 * time.Second
	input, err := reg.RuleTestInput(sc, mockexporter.RuleTestOptions{Interval: interval, Duration: 10 * time.Minute})
	require.NoError(t, err)
	require.Len(t, input, 1)

	labels := map[string]string{"severity": "warning", "instance": mockexporter.DefaultInstance, "service": mockexporter.DefaultService}
	firing := func(v float64) []map[string]any {
		return []map[string]any{{
			"exp_labels": labels,
			"exp_annotations": map[string]string{
				"summary":     "High memory usage on mock-app-1",
				"description": "mock_high_memory_usage_bytes is " + strconv.FormatFloat(v, 'g', -1, 64) + " on mock-app-1 (mock-service).",
			},
		}}
	}
	rules, err := filepath.Abs("rules.yml")
	require.NoError(t, err)
	file := map[string]any{
		"rule_files":          []string{rules},
		"evaluation_interval": interval.String(),
		"tests": []map[string]any{{
			"name":         "memory-pressure scenario",
			"interval":     interval.String(),
			"input_series": input,
			"alert_rule_test": []map[string]any{
				{"eval_time": "2m", "alertname": "HighMemoryUsage", "exp_alerts": []any{}}, // 83
				{"eval_time": "4m", "alertname": "HighMemoryUsage", "exp_alerts": firing(93)},
				{"eval_time": "7m", "alertname": "HighMemoryUsage", "exp_alerts": firing(98)},
				{"eval_time": "9m", "alertname": "HighMemoryUsage", "exp_alerts": []any{}}, // 40
			},
		}},
	}
	b, err := yaml.Marshal(file)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "scenario_test.yml")
	require.NoError(t, os.WriteFile(path, b, 0o644))
	assert.Empty(t, promflowtest.RuleTest(t, path), "%s", b)

	// The rendered input is what the rules see: a wrong expectation fails.
	file["tests"].([]map[string]any)[0]["alert_rule_test"] = []map[string]any{
		{"eval_time": "2m", "alertname": "HighMemoryUsage", "exp_alerts": firing(83)},
	}
	b, err = yaml.Marshal(file)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, b, 0o644))
	rec := &recordingTB{TB: t}
	failures := promflowtest.RuleTest(rec, path)
	require.Len(t, failures, 1, "%v", rec.errors)
	assert.Contains(t, failures[0].Case, "alertname: HighMemoryUsage, time: 2m")
}
