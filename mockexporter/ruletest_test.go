package mockexporter_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/mockexporter"
)

const memoryPressure = `
name: memory-pressure
phases:
  - at: 0s
    set: [{metric: mock_high_memory_usage_bytes, value: 78}]
  - at: 1m
    set: [{metric: mock_high_memory_usage_bytes, source: {kind: ramp, from: 78, to: 98, duration: 4m}}]
  - at: 8m
    set: [{metric: mock_high_memory_usage_bytes, value: 40}]
`

func TestRuleTestInput(t *testing.T) {
	sc, err := mockexporter.ParseScenario([]byte(memoryPressure))
	require.NoError(t, err)
	r, _ := newTestRegistry(t)
	before := snapshot(t, r)
	in, err := r.RuleTestInput(sc, mockexporter.RuleTestOptions{Interval: 30 * time.Second, Duration: 10 * time.Minute, Labels: mockexporter.Labels{"job": "mock-metrics"}})
	require.NoError(t, err)
	assert.Equal(t, []mockexporter.InputSeries{{
		Series: `mock_high_memory_usage_bytes{instance="mock-app-1",job="mock-metrics",service="mock-service"}`,
		Values: "78+0x2 80.5+2.5x7 98+0x4 40+0x4",
	}}, in)
	assert.Equal(t, before, snapshot(t, r), "the registry is not changed")

	// Counters integrate their rate as a scrape reads them; a series' own
	// source drives it before the scenario's first phase.
	require.NoError(t, r.Set("mock_disk_read_errors_total", nil, mockexporter.Constant(0.5)))
	sc = mockexporter.Scenario{Name: "errors", Phases: []mockexporter.Phase{{At: mockexporter.Duration(time.Minute), Set: []mockexporter.Target{{Metric: "mock_disk_read_errors_total", Value: ptr(2.0)}}}}}
	in, err = r.RuleTestInput(sc, mockexporter.RuleTestOptions{Interval: 15 * time.Second, Duration: 2 * time.Minute})
	require.NoError(t, err)
	assert.Equal(t, "0+7.5x4 60+30x3", in[0].Values)
	assert.Equal(t, `mock_disk_read_errors_total{device="sda"}`, in[0].Series)

	_, err = r.RuleTestInput(sc, mockexporter.RuleTestOptions{Labels: mockexporter.Labels{"device": "x"}})
	assert.ErrorIs(t, err, mockexporter.ErrInvalid, "an extra label may not shadow the family's")
	_, err = r.RuleTestInput(sc, mockexporter.RuleTestOptions{Interval: time.Millisecond, Duration: time.Hour})
	assert.ErrorIs(t, err, mockexporter.ErrInvalid)
}

func TestExpandingNotation(t *testing.T) {
	assert.Equal(t, "1", mockexporter.ExpandingNotation([]float64{1}))
	assert.Equal(t, "1+4x1", mockexporter.ExpandingNotation([]float64{1, 5}))
	assert.Equal(t, "10-2.5x2 7", mockexporter.ExpandingNotation([]float64{10, 7.5, 5, 7}))
	// promtool expands by repeated addition: 0, 0.1, 0.2,
	// 0.30000000000000004, 0.4 is what "0+0.1x4" gives; 0.3 is not.
	vals := []float64{0, 0.1, 0.2, 0.30000000000000004, 0.4}
	assert.Equal(t, "0+0.1x4", mockexporter.ExpandingNotation(vals))
	assert.Equal(t, "0.1+0.1x1 0.3", mockexporter.ExpandingNotation([]float64{0.1, 0.2, 0.3}))
}

func ptr[T any](v T) *T { return &v }
