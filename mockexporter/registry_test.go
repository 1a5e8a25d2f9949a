package mockexporter_test

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/mockexporter"
)

func TestGaugeFollowsSourceAtCollectTime(t *testing.T) {
	reg, clock := newTestRegistry(t)
	cpu := mockexporter.Labels{} // defaults: instance=mock-app-1, service=mock-service
	require.NoError(t, reg.Set("mock_high_cpu_usage_percent", cpu, mockexporter.Ramp{From: 10, To: 90, Duration: 80 * time.Second}))

	g := prometheus.NewPedanticRegistry()
	require.NoError(t, g.Register(reg))
	read := func() float64 {
		mfs, err := g.Gather()
		require.NoError(t, err)
		for _, mf := range mfs {
			if mf.GetName() == "mock_high_cpu_usage_percent" {
				return mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		t.Fatal("family missing")
		return 0
	}
	assert.Equal(t, 10.0, read())
	clock.Advance(40 * time.Second)
	assert.Equal(t, 50.0, read())
	clock.Advance(time.Hour)
	assert.Equal(t, 90.0, read())
	v, err := reg.Value("mock_high_cpu_usage_percent", nil)
	require.NoError(t, err)
	assert.Equal(t, 90.0, v)
}

func TestCounterIntegratesRateAndOnlyRises(t *testing.T) {
	reg, clock := newTestRegistry(t)
	dev := mockexporter.Labels{"device": "sda"}
	const m = "mock_disk_read_errors_total"
	require.NoError(t, reg.Set(m, dev, mockexporter.Constant(2))) // 2 errors per second
	clock.Advance(10 * time.Second)
	v, err := reg.Value(m, dev)
	require.NoError(t, err)
	assert.InDelta(t, 20, v, 1e-9)

	require.NoError(t, reg.Add(m, dev, 5))
	v, _ = reg.Value(m, dev)
	assert.InDelta(t, 25, v, 1e-9)

	// A ramp rate 0→10/s over 10 s integrates to 50.
	require.NoError(t, reg.Set(m, dev, mockexporter.Ramp{From: 0, To: 10, Duration: 10 * time.Second}))
	clock.Advance(10 * time.Second)
	v, _ = reg.Value(m, dev)
	assert.InDelta(t, 75, v, 1e-6)

	// The clock going back changes nothing.
	clock.Advance(-time.Hour)
	v2, _ := reg.Value(m, dev)
	assert.Equal(t, v, v2)
	clock.Advance(time.Hour)

	// Lowering is refused and changes nothing; raising works.
	err = reg.SetValue(m, dev, 1)
	var ve *mockexporter.ValidationError
	require.ErrorAs(t, err, &ve)
	assert.Contains(t, err.Error(), "only rises")
	err = reg.Add(m, dev, -1)
	require.ErrorAs(t, err, &ve)
	err = reg.Set(m, dev, mockexporter.Sine{Base: 0, Amplitude: 1, Period: time.Second})
	require.ErrorAs(t, err, &ve, "negative rates are refused")
	require.NoError(t, reg.Set(m, dev, mockexporter.Constant(0)))
	require.NoError(t, reg.SetValue(m, dev, 100))
	v, _ = reg.Value(m, dev)
	assert.InDelta(t, 100, v, 1e-9)

	// Only an explicit reset lowers it.
	require.NoError(t, reg.ResetSeries(m, dev))
	v, _ = reg.Value(m, dev)
	assert.Equal(t, 0.0, v)
	assert.ErrorIs(t, reg.ResetSeries("mock_high_cpu_usage_percent", nil), mockexporter.ErrWrongType)
}

func TestCounterMonotonicAcrossScrapes(t *testing.T) {
	reg, clock := newTestRegistry(t)
	require.NoError(t, reg.Set("mock_connection_drops_total", nil, mockexporter.Sine{Base: 5, Amplitude: 5, Period: 7 * time.Second}))
	g := prometheus.NewRegistry()
	g.MustRegister(reg)
	prev := -1.0
	for range 200 {
		clock.Advance(333 * time.Millisecond)
		v := gatherValue(t, g, "mock_connection_drops_total")
		assert.GreaterOrEqual(t, v, prev)
		prev = v
	}
	// The mean rate is 5/s over ~66.6 s.
	assert.InDelta(t, 5*66.6, prev, 15)
}

// gatherValue gathers g and returns the first sample of family name.
func gatherValue(t *testing.T, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			if m.Counter != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("family %s missing", name)
	return 0
}

func TestHistogram(t *testing.T) {
	reg, clock := newTestRegistry(t)
	require.NoError(t, reg.Declare(mockexporter.MetricOptions{
		Name: "app_request_duration_seconds", Type: mockexporter.Histogram, Range: mockexporter.NonNegative,
		LabelNames: []string{"route"}, Buckets: []float64{0.1, 0.5, 1}, ObservationsPerSecond: 10,
	}))
	route := mockexporter.Labels{"route": "/api"}
	require.NoError(t, reg.Set("app_request_duration_seconds", route, mockexporter.Constant(0.3)))
	clock.Advance(10 * time.Second) // 100 simulated observations of 0.3 s
	require.NoError(t, reg.Observe("app_request_duration_seconds", route, 0.05, 2))

	mfs := scrapeFamilies(t, reg.Handler())
	mf := mfs["app_request_duration_seconds"]
	require.NotNil(t, mf)
	h := mf.GetMetric()[0].GetHistogram()
	assert.Equal(t, uint64(102), h.GetSampleCount())
	assert.InDelta(t, 100*0.3+0.05+2, h.GetSampleSum(), 1e-6)
	var cum []uint64
	for _, b := range h.GetBucket() {
		cum = append(cum, b.GetCumulativeCount())
	}
	assert.Equal(t, []uint64{1, 101, 101, 102}, cum) // the last is the +Inf bucket the parser adds

	assert.ErrorIs(t, reg.Observe("mock_high_cpu_usage_percent", nil, 1), mockexporter.ErrWrongType)
	assert.ErrorIs(t, reg.SetValue("app_request_duration_seconds", route, 1), mockexporter.ErrWrongType)
	var ve *mockexporter.ValidationError
	assert.ErrorAs(t, reg.Observe("app_request_duration_seconds", route, -1), &ve)
	assert.ErrorAs(t, reg.Observe("app_request_duration_seconds", route, math.NaN()), &ve)
}

func TestRegistryValidationChangesNothing(t *testing.T) {
	reg, _ := newTestRegistry(t)
	long := string(make([]byte, 129))
	cases := []struct {
		name string
		op   func() error
		is   error
	}{
		{"unknown metric", func() error { return reg.SetValue("nope", nil, 1) }, mockexporter.ErrUnknownMetric},
		{"unknown label", func() error { return reg.SetValue("mock_service_up", mockexporter.Labels{"zone": "a"}, 1) }, nil},
		{"empty label", func() error { return reg.SetValue("mock_service_up", mockexporter.Labels{"service": ""}, 1) }, nil},
		{"long label", func() error { return reg.SetValue("mock_service_up", mockexporter.Labels{"service": long}, 1) }, nil},
		{"bad UTF-8 label", func() error { return reg.SetValue("mock_service_up", mockexporter.Labels{"service": "\xff"}, 1) }, nil},
		{"NaN", func() error { return reg.SetValue("mock_high_memory_usage_bytes", nil, math.NaN()) }, nil},
		{"Inf", func() error { return reg.SetValue("mock_high_memory_usage_bytes", nil, math.Inf(1)) }, nil},
		{"negative", func() error { return reg.SetValue("mock_high_memory_usage_bytes", nil, -1) }, nil},
		{"percent > 100", func() error { return reg.SetValue("mock_high_cpu_usage_percent", nil, 101) }, nil},
		{"status 2", func() error { return reg.SetValue("mock_service_up", nil, 2) }, nil},
		{"source leaves range", func() error {
			return reg.Set("mock_high_cpu_usage_percent", nil, mockexporter.Sine{Base: 90, Amplitude: 20, Period: time.Minute})
		}, nil},
		{"invalid source", func() error { return reg.Set("mock_high_cpu_usage_percent", nil, mockexporter.Ramp{}) }, nil},
		{"nil source", func() error { return reg.Set("mock_high_cpu_usage_percent", nil, nil) }, nil},
		{"gauge add leaves range", func() error { return reg.Add("mock_high_cpu_usage_percent", nil, 150) }, nil},
		{"delete unknown series", func() error { return reg.Delete("mock_service_up", mockexporter.Labels{"service": "x"}) }, mockexporter.ErrUnknownSeries},
		{"duplicate declare", func() error { return reg.Declare(mockexporter.MetricOptions{Name: "mock_service_up"}) }, mockexporter.ErrDuplicateMetric},
		{"bad metric name", func() error { return reg.Declare(mockexporter.MetricOptions{Name: "1bad"}) }, nil},
		{"bad label name", func() error { return reg.Declare(mockexporter.MetricOptions{Name: "ok", LabelNames: []string{"__x"}}) }, nil},
		{"duplicate label", func() error {
			return reg.Declare(mockexporter.MetricOptions{Name: "ok", LabelNames: []string{"a", "a"}})
		}, nil},
		{"default for unknown label", func() error {
			return reg.Declare(mockexporter.MetricOptions{Name: "ok", LabelNames: []string{"a"}, Defaults: mockexporter.Labels{"b": "x"}})
		}, nil},
		{"unsorted buckets", func() error {
			return reg.Declare(mockexporter.MetricOptions{Name: "ok", Type: mockexporter.Histogram, Buckets: []float64{1, 0.5}})
		}, nil},
		{"buckets on gauge", func() error { return reg.Declare(mockexporter.MetricOptions{Name: "ok", Buckets: []float64{1}}) }, nil},
		{"le label on histogram", func() error {
			return reg.Declare(mockexporter.MetricOptions{Name: "ok", Type: mockexporter.Histogram, LabelNames: []string{"le"}})
		}, nil},
		{"runtime collector name", func() error { return reg.Declare(mockexporter.MetricOptions{Name: "go_goroutines"}) }, nil},
		{"clash with counter samples", func() error {
			return reg.Declare(mockexporter.MetricOptions{Name: "mock_connection_drops_total_total"})
		}, mockexporter.ErrDuplicateMetric},
		{"histogram clashing with gauge", func() error {
			// It would expose mock_queue_backlog_high_count, a catalogue gauge.
			return reg.Declare(mockexporter.MetricOptions{Name: "mock_queue_backlog_high", Type: mockexporter.Histogram, Buckets: []float64{1}})
		}, mockexporter.ErrDuplicateMetric},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := snapshot(t, reg)
			err := tc.op()
			require.Error(t, err)
			if tc.is != nil {
				assert.ErrorIs(t, err, tc.is)
			} else {
				var ve *mockexporter.ValidationError
				assert.ErrorAs(t, err, &ve)
			}
			assert.Equal(t, before, snapshot(t, reg))
		})
	}
}

func TestStatusAndCountShapeComputedValues(t *testing.T) {
	reg, clock := newTestRegistry(t)
	// A sine between 0 and 1 on a status gauge is rounded to 0 or 1.
	require.NoError(t, reg.Set("mock_service_up", nil, mockexporter.Sine{Base: 0.5, Amplitude: 0.5, Period: time.Minute}))
	for range 60 {
		clock.Advance(time.Second)
		v, err := reg.Value("mock_service_up", nil)
		require.NoError(t, err)
		assert.True(t, v == 0 || v == 1, "%v", v)
	}
	require.NoError(t, reg.Set("mock_queue_backlog_high_count", nil, mockexporter.Ramp{From: 0, To: 10, Duration: 7 * time.Second}))
	clock.Advance(time.Second)
	v, _ := reg.Value("mock_queue_backlog_high_count", nil)
	assert.Equal(t, math.Round(v), v)
}

func TestDeclareDeleteAndLimit(t *testing.T) {
	c := newClock()
	reg := mockexporter.New(mockexporter.Options{Empty: true, Now: c.Now, MaxSeries: 3, Logger: discardLogger()})
	require.NoError(t, reg.Declare(mockexporter.MetricOptions{Name: "q_depth", LabelNames: []string{"queue"}, Range: mockexporter.Count}))
	for _, q := range []string{"a", "b", "c"} {
		require.NoError(t, reg.SetValue("q_depth", mockexporter.Labels{"queue": q}, 1))
	}
	err := reg.SetValue("q_depth", mockexporter.Labels{"queue": "d"}, 1)
	assert.ErrorIs(t, err, mockexporter.ErrLimit)
	require.NoError(t, reg.Delete("q_depth", mockexporter.Labels{"queue": "a"}))
	require.NoError(t, reg.SetValue("q_depth", mockexporter.Labels{"queue": "d"}, 1))
	list, err := reg.Series("q_depth")
	require.NoError(t, err)
	var queues []string
	for _, si := range list {
		queues = append(queues, si.Labels["queue"])
	}
	assert.Equal(t, []string{"b", "c", "d"}, queues)
	_, err = reg.Series("nope")
	assert.ErrorIs(t, err, mockexporter.ErrUnknownMetric)
	// Without defaults every label is required.
	err = reg.SetValue("q_depth", nil, 1)
	var ve *mockexporter.ValidationError
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, "labels.queue", ve.Field)

	// Families without a default series are capped too.
	for i := 1; i < mockexporter.MaxFamilies; i++ {
		require.NoError(t, reg.Declare(mockexporter.MetricOptions{Name: fmt.Sprintf("f%d", i), LabelNames: []string{"x"}}))
	}
	assert.ErrorIs(t, reg.Declare(mockexporter.MetricOptions{Name: "one_too_many", LabelNames: []string{"x"}}), mockexporter.ErrLimit)
	assert.Len(t, reg.Families(), mockexporter.MaxFamilies)
}

func TestResetRestoresCatalogue(t *testing.T) {
	reg, _ := newTestRegistry(t)
	initial := snapshot(t, reg)
	require.NoError(t, reg.SetValue("mock_high_cpu_usage_percent", nil, 50))
	require.NoError(t, reg.Declare(mockexporter.MetricOptions{Name: "extra"}))
	require.NoError(t, reg.SetFaults(mockexporter.Faults{Status: 500}))
	reg.Reset()
	// Scenarios list is empty too (none were started), so the whole state matches.
	assert.Equal(t, initial, snapshot(t, reg))
}

func TestConcurrentUse(t *testing.T) {
	reg := mockexporter.New(mockexporter.Options{Logger: discardLogger()})
	h := reg.Handler()
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 50 {
				switch (i + j) % 5 {
				case 0:
					_ = reg.SetValue("mock_high_cpu_usage_percent", nil, float64(j))
				case 1:
					_ = reg.Add("mock_disk_read_errors_total", mockexporter.Labels{"device": "sda"}, 1)
				case 2:
					assert.Equal(t, http.StatusOK, do(t, h, "GET", "/metrics", "").Code)
				case 3:
					_, _ = reg.StartScenario(mockexporter.Scenario{Name: "c", Phases: []mockexporter.Phase{{Set: []mockexporter.Target{{Metric: "mock_service_up", Src: mockexporter.Constant(0)}}}}})
				case 4:
					_, _ = reg.Series("")
					_ = reg.SetFaults(mockexporter.Faults{})
				}
			}
		}()
	}
	wg.Wait()
	v, err := reg.Value("mock_disk_read_errors_total", mockexporter.Labels{"device": "sda"})
	require.NoError(t, err)
	assert.Equal(t, 40.0, v)
}

func TestErrorsAreWrapped(t *testing.T) {
	reg, _ := newTestRegistry(t)
	err := reg.SetValue("mock_unknown", nil, 1)
	assert.True(t, errors.Is(err, mockexporter.ErrUnknownMetric))
	assert.Contains(t, err.Error(), "mock_unknown")
	assert.False(t, errors.Is(err, mockexporter.ErrInvalid))

	err = reg.SetValue("mock_high_cpu_usage_percent", nil, 150)
	require.ErrorIs(t, err, mockexporter.ErrInvalid)
	var ve *mockexporter.ValidationError
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, "value", ve.Field)
}

func TestExtremeSourcesStayFinite(t *testing.T) {
	reg, clock := newTestRegistry(t)
	require.NoError(t, reg.Declare(mockexporter.MetricOptions{Name: "wide"}))
	require.NoError(t, reg.Set("wide", nil, mockexporter.Ramp{From: -math.MaxFloat64, To: math.MaxFloat64, Duration: time.Second}))
	require.NoError(t, reg.Set("mock_connection_drops_total", nil, mockexporter.Constant(math.MaxFloat64)))
	clock.Advance(500 * time.Millisecond)
	rec := do(t, reg.Handler(), "GET", "/api/v1/series", "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	clock.Advance(time.Hour)
	rec = do(t, reg.Handler(), "GET", "/api/v1/series", "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	scrapeFamilies(t, reg.Handler())
}

// TestCounterAddOverflowIsRefused: a counter whose simulated rate has
// carried it near the float64 limit refuses an increment that would make
// it infinite (400, value unchanged) and keeps reading as a finite number.
func TestCounterAddOverflowIsRefused(t *testing.T) {
	reg, clock := newTestRegistry(t)
	h := reg.Handler()
	require.NoError(t, reg.Set("mock_connection_drops_total", nil, mockexporter.Constant(1e308)))
	clock.Advance(3 * time.Second)
	before, err := reg.Value("mock_connection_drops_total", nil)
	require.NoError(t, err)
	require.False(t, math.IsInf(before, 0))

	rec := do(t, h, "POST", "/api/v1/series", `{"metric":"mock_connection_drops_total","add":1e308}`)
	require.Equal(t, http.StatusBadRequest, rec.Code, rec.Body.String())
	assert.Contains(t, rec.Body.String(), "overflows")
	after, err := reg.Value("mock_connection_drops_total", nil)
	require.NoError(t, err)
	assert.Equal(t, before, after)

	rec = do(t, h, "GET", "/api/v1/series", "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	clock.Advance(time.Hour) // the rate goes on: still finite
	rec = do(t, h, "GET", "/api/v1/series", "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	scrapeFamilies(t, h)
}
