package mockexporter_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/mockexporter"
)

func newBudgetRegistry(t testing.TB, opts mockexporter.Options) *mockexporter.Registry {
	t.Helper()
	opts.Now = newClock().Now
	opts.Logger = discardLogger()
	return mockexporter.New(opts)
}

func TestBudgetDefaults(t *testing.T) {
	reg, _ := newTestRegistry(t)
	u := reg.Usage()
	assert.Equal(t, 100_000, u.MaxSeries)
	assert.Equal(t, int64(64<<20), u.MaxBytes)
	assert.Equal(t, int64(16<<20), u.MaxExpositionBytes)
	assert.Equal(t, 26, u.Series)
	assert.Equal(t, 26, u.Families)
	assert.Greater(t, u.Bytes, int64(26*mockexporter.SeriesOverheadBytes))
	assert.Greater(t, u.ExpositionBytes, int64(mockexporter.RuntimeExpositionReserve))

	// The same over HTTP.
	rec := do(t, reg.Handler(), "GET", "/api/v1/usage", "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var body struct {
		Data mockexporter.Usage `json:"data"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
	assert.Equal(t, u, body.Data)
	assert.Equal(t, http.StatusMethodNotAllowed, do(t, reg.Handler(), "POST", "/api/v1/usage", "{}").Code)

	// Negative byte budgets mean no limit.
	u = newBudgetRegistry(t, mockexporter.Options{MaxBytes: -5, MaxExpositionBytes: -1}).Usage()
	assert.Equal(t, int64(-1), u.MaxBytes)
	assert.Equal(t, int64(-1), u.MaxExpositionBytes)
}

// fill sends requests made by body(i) until one is refused and returns that
// refusal; the registry's state must not change with it.
func fill(t *testing.T, reg *mockexporter.Registry, method, path string, body func(i int) string) (int, string) {
	t.Helper()
	h := reg.Handler()
	for i := range 100_000 {
		before := snapshot(t, reg)
		rec := do(t, h, method, path, body(i))
		if rec.Code == http.StatusOK || rec.Code == http.StatusCreated {
			continue
		}
		assert.Equal(t, before, snapshot(t, reg), "the refused request %d changed the state", i)
		return rec.Code, rec.Body.String()
	}
	t.Fatal("never refused")
	return 0, ""
}

func TestBudgetExceeded(t *testing.T) {
	long := strings.Repeat("v", 120)
	seriesBody := func(i int) string {
		return fmt.Sprintf(`{"metric":"mock_service_up","labels":{"service":"%s-%d"},"value":1}`, long, i)
	}
	cases := []struct {
		name   string
		opts   mockexporter.Options
		method string
		path   string
		body   func(i int) string
		code   int
		msg    string
	}{
		{"series count", mockexporter.Options{MaxSeries: 40}, "POST", "/api/v1/series", seriesBody, 413, "MaxSeries is 40"},
		{"bytes", mockexporter.Options{MaxBytes: 40_000}, "POST", "/api/v1/series", seriesBody, 413, "MaxBytes is 40000"},
		{"exposition", mockexporter.Options{MaxExpositionBytes: 40_000, MaxBytes: -1}, "POST", "/api/v1/series", seriesBody, 413, "MaxExpositionBytes is 40000"},
		{"seed route", mockexporter.Options{MaxBytes: 40_000}, "POST", "", nil, 413, "MaxBytes is 40000"},
		{"declare with a default series", mockexporter.Options{MaxExpositionBytes: 50_000, MaxBytes: -1}, "POST", "/api/v1/metrics", func(i int) string {
			return fmt.Sprintf(`{"name":"app_h%d","type":"histogram","labels":["a"],"defaults":{"a":"x"},"buckets":[1,2,3,4,5,6,7,8]}`, i)
		}, 413, "MaxExpositionBytes is 50000"},
		{"scenario", mockexporter.Options{MaxBytes: 60_000}, "POST", "/api/v1/scenarios", func(i int) string {
			var set []string
			for j := range 5 {
				set = append(set, fmt.Sprintf(`{"metric":"mock_service_up","labels":{"service":"%d-%d"},"value":1}`, i, j))
			}
			return `{"name":"grow","phases":[{"at":"0s","set":[` + strings.Join(set, ",") + `]}]}`
		}, 413, "MaxBytes is 60000"},
		{"steps source", mockexporter.Options{MaxBytes: 40_000}, "POST", "/api/v1/series", func(i int) string {
			vals := strings.TrimSuffix(strings.Repeat("1,", 1000), ",")
			return fmt.Sprintf(`{"metric":"mock_high_cpu_usage_percent","labels":{"instance":"i%d"},"source":{"kind":"steps","values":[%s],"every":"1s"}}`, i, vals)
		}, 413, "MaxBytes is 40000"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reg := newBudgetRegistry(t, tc.opts)
			var code int
			var msg string
			if tc.body == nil { // the seed route: /simulate/disk-usage/{device}/{value}
				code, msg = fillSimulate(t, reg)
			} else {
				code, msg = fill(t, reg, tc.method, tc.path, tc.body)
			}
			assert.Equal(t, tc.code, code, msg)
			assert.Contains(t, msg, tc.msg, "the message names the limit and its value")
			u := reg.Usage()
			assert.LessOrEqual(t, u.Series, u.MaxSeries)
			if u.MaxBytes >= 0 {
				assert.LessOrEqual(t, u.Bytes, u.MaxBytes)
			}
			if u.MaxExpositionBytes >= 0 {
				assert.LessOrEqual(t, u.ExpositionBytes, u.MaxExpositionBytes)
			}
		})
	}
}

func fillSimulate(t *testing.T, reg *mockexporter.Registry) (int, string) {
	h := reg.Handler()
	for i := range 100_000 {
		before := snapshot(t, reg)
		rec := do(t, h, "POST", "/simulate/disk-usage/"+strings.Repeat("d", 100)+strconv.Itoa(i)+"/85", "")
		if rec.Code == http.StatusOK {
			continue
		}
		assert.Equal(t, before, snapshot(t, reg), "the refused request %d changed the state", i)
		return rec.Code, rec.Body.String()
	}
	t.Fatal("never refused")
	return 0, ""
}

func TestShapeLimits(t *testing.T) {
	buckets := func(n int) string {
		var b []string
		for i := range n {
			b = append(b, strconv.Itoa(i+1))
		}
		return strings.Join(b, ",")
	}
	labels := func(n int) string {
		var b []string
		for i := range n {
			b = append(b, fmt.Sprintf(`"l%d"`, i))
		}
		return strings.Join(b, ",")
	}
	cases := []struct {
		name string
		opts mockexporter.Options
		path string
		body string
		code int
		msg  string
	}{
		{"65 buckets", mockexporter.Options{}, "/api/v1/metrics", `{"name":"h","type":"histogram","buckets":[` + buckets(65) + `]}`, 400, "65 buckets, over MaxBuckets = 64"},
		{"64 buckets", mockexporter.Options{}, "/api/v1/metrics", `{"name":"h","type":"histogram","buckets":[` + buckets(64) + `]}`, 201, ""},
		{"MaxBuckets 4", mockexporter.Options{MaxBuckets: 4}, "/api/v1/metrics", `{"name":"h","type":"histogram","buckets":[` + buckets(5) + `]}`, 400, "over MaxBuckets = 4"},
		{"default buckets over MaxBuckets", mockexporter.Options{MaxBuckets: 4}, "/api/v1/metrics", `{"name":"h","type":"histogram"}`, 400, "11 buckets, over MaxBuckets = 4"},
		{"33 labels", mockexporter.Options{}, "/api/v1/metrics", `{"name":"g","labels":[` + labels(33) + `]}`, 400, "33 label names, over MaxLabels = 32"},
		{"32 labels", mockexporter.Options{}, "/api/v1/metrics", `{"name":"g","labels":[` + labels(32) + `]}`, 201, ""},
		{"MaxLabels 2", mockexporter.Options{MaxLabels: 2}, "/api/v1/metrics", `{"name":"g","labels":[` + labels(3) + `]}`, 400, "over MaxLabels = 2"},
		{"label value over MaxLabelValueBytes", mockexporter.Options{MaxLabelValueBytes: 16}, "/api/v1/series", `{"metric":"mock_service_up","labels":{"service":"12345678901234567"},"value":1}`, 400, "longer than 16 bytes (MaxLabelValueBytes)"},
		{"label value at MaxLabelValueBytes", mockexporter.Options{MaxLabelValueBytes: 16}, "/api/v1/series", `{"metric":"mock_service_up","labels":{"service":"1234567890123456"},"value":1}`, 200, ""},
		{"default over MaxLabelValueBytes", mockexporter.Options{MaxLabelValueBytes: 16}, "/api/v1/metrics", `{"name":"g","labels":["a"],"defaults":{"a":"12345678901234567"}}`, 400, "longer than 16"},
		{"seed route over MaxLabelValueBytes", mockexporter.Options{MaxLabelValueBytes: 16}, "/simulate/disk-usage/12345678901234567/5", "", 400, "longer than 16"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reg := newBudgetRegistry(t, tc.opts)
			before := snapshot(t, reg)
			rec := do(t, reg.Handler(), "POST", tc.path, tc.body)
			require.Equal(t, tc.code, rec.Code, rec.Body.String())
			if tc.code >= 400 {
				assert.Contains(t, rec.Body.String(), tc.msg)
				assert.Equal(t, before, snapshot(t, reg), "state changed")
			}
		})
	}
}

func TestLimitErrorFromGo(t *testing.T) {
	reg := newBudgetRegistry(t, mockexporter.Options{Empty: true, MaxBytes: 2000})
	require.NoError(t, reg.Declare(mockexporter.MetricOptions{Name: "g", LabelNames: []string{"a"}}))
	var err error
	for i := 0; err == nil; i++ {
		err = reg.SetValue("g", mockexporter.Labels{"a": strconv.Itoa(i)}, 1)
	}
	assert.ErrorIs(t, err, mockexporter.ErrLimit)
	var le *mockexporter.LimitError
	require.True(t, errors.As(err, &le))
	assert.Equal(t, "MaxBytes", le.Limit)
	assert.Equal(t, int64(2000), le.Max)
	assert.Greater(t, le.Want, le.Max)
	assert.LessOrEqual(t, reg.Usage().Bytes, int64(2000))
}

// TestUsageGoesBackDown: deleting what was added, or a reset, gives the
// usage back exactly.
func TestUsageGoesBackDown(t *testing.T) {
	reg, _ := newTestRegistry(t)
	h := reg.Handler()
	initial := reg.Usage()

	require.Equal(t, 201, do(t, h, "POST", "/api/v1/metrics", `{"name":"app_latency","type":"histogram","labels":["svc"],"buckets":[0.1,1,10]}`).Code)
	declared := reg.Usage()
	assert.Greater(t, declared.Bytes, initial.Bytes)
	assert.Greater(t, declared.ExpositionBytes, initial.ExpositionBytes)
	assert.Equal(t, initial.Series, declared.Series, "no defaults, no series")

	bodies := []string{
		`{"metric":"app_latency","labels":{"svc":"a"},"observe":[0.5]}`,
		`{"metric":"mock_service_up","labels":{"service":"x\"y\\z"},"source":{"kind":"steps","values":[0,1,0],"every":"1s"}}`,
		`{"metric":"mock_disk_read_errors_total","labels":{"device":"nvme0"},"add":3}`,
	}
	refs := []string{
		`{"metric":"app_latency","labels":{"svc":"a"}}`,
		`{"metric":"mock_service_up","labels":{"service":"x\"y\\z"}}`,
		`{"metric":"mock_disk_read_errors_total","labels":{"device":"nvme0"}}`,
	}
	for _, b := range bodies {
		require.Equal(t, 200, do(t, h, "POST", "/api/v1/series", b).Code, b)
	}
	grown := reg.Usage()
	assert.Equal(t, declared.Series+3, grown.Series)
	assert.Greater(t, grown.Bytes, declared.Bytes)

	// A new source replaces the old one's cost; a constant costs nothing.
	require.Equal(t, 200, do(t, h, "POST", "/api/v1/series", `{"metric":"mock_service_up","labels":{"service":"x\"y\\z"},"value":1}`).Code)
	assert.Less(t, reg.Usage().Bytes, grown.Bytes)

	for _, ref := range refs {
		require.Equal(t, 200, do(t, h, "DELETE", "/api/v1/series", ref).Code, ref)
	}
	assert.Equal(t, declared, reg.Usage(), "deleting the series gives their cost back")

	require.Equal(t, 200, do(t, h, "POST", "/api/v1/reset", "").Code)
	assert.Equal(t, initial, reg.Usage(), "a reset gives everything back")

	// A scenario's definition counts until it leaves the history (which
	// outlives a reset); the series it created go with the reset.
	rec := do(t, h, "POST", "/api/v1/scenarios", `{"name":"s","phases":[{"at":"0s","set":[{"metric":"mock_service_up","labels":{"service":"new"},"value":0}]}]}`)
	require.Equal(t, 201, rec.Code, rec.Body.String())
	withScenario := reg.Usage()
	assert.Equal(t, initial.Series+1, withScenario.Series)
	require.Equal(t, 200, do(t, h, "POST", "/api/v1/reset", "").Code)
	afterReset := reg.Usage()
	assert.Equal(t, initial.Series, afterReset.Series)
	assert.Equal(t, initial.ExpositionBytes, afterReset.ExpositionBytes)
	assert.Greater(t, afterReset.Bytes, initial.Bytes, "the stopped scenario is still listed")
	assert.Less(t, afterReset.Bytes, withScenario.Bytes)
}

// TestExpositionWithinBudget fills a registry to its exposition budget with
// every type of series, label values that need escaping and histograms, and
// checks that /metrics (text and OpenMetrics, with the runtime collectors)
// stays within the budget and within the registry's estimate.
func TestExpositionWithinBudget(t *testing.T) {
	const budget = 256 << 10
	reg := newBudgetRegistry(t, mockexporter.Options{MaxExpositionBytes: budget, MaxBytes: -1})
	h := reg.Handler()
	require.Equal(t, 201, do(t, h, "POST", "/api/v1/metrics", `{"name":"app_h","type":"histogram","labels":["svc"],"buckets":[1e-300,0.001,1,1e300],"help":"Quotes \" and \\ and\nnewlines."}`).Code)
	require.Equal(t, 201, do(t, h, "POST", "/api/v1/metrics", `{"name":"app_c","type":"counter","labels":["svc"],"range":"any"}`).Code)
	esc := strings.Repeat(`\"\\`, 20)
	refused := 0
	for i := 0; refused < 3; i++ {
		var body string
		switch i % 3 {
		case 0:
			body = fmt.Sprintf(`{"metric":"app_h","labels":{"svc":"%s%d"},"observe":[-1.2345678901234567e-300,5e299]}`, esc, i)
		case 1:
			body = fmt.Sprintf(`{"metric":"app_c","labels":{"svc":"%s%d"},"add":1.2345678901234567e300}`, esc, i)
		default:
			body = fmt.Sprintf(`{"metric":"mock_high_memory_usage_bytes","labels":{"instance":"%s%d"},"value":1.2345678901234567e-300}`, esc, i)
		}
		rec := do(t, h, "POST", "/api/v1/series", body)
		switch rec.Code {
		case 200:
		case 413:
			refused++
			assert.Contains(t, rec.Body.String(), "MaxExpositionBytes is 262144")
		default:
			t.Fatalf("%s: %d %s", body, rec.Code, rec.Body.String())
		}
	}
	u := reg.Usage()
	assert.LessOrEqual(t, u.ExpositionBytes, int64(budget))
	assert.Greater(t, u.ExpositionBytes, int64(budget*9/10), "the registry was filled to its budget")
	for _, accept := range []string{"", "application/openmetrics-text; version=1.0.0"} {
		rec := do(t, h, "GET", "/metrics", "", "Accept", accept)
		require.Equal(t, 200, rec.Code)
		n := rec.Body.Len()
		t.Logf("Accept %q: %d bytes of /metrics, estimate %d, budget %d", accept, n, u.ExpositionBytes, budget)
		assert.LessOrEqual(t, n, budget, "the scrape stays within its budget")
		assert.LessOrEqual(t, int64(n), u.ExpositionBytes, "the estimate is an upper bound")
	}
	if t.Failed() {
		return
	}
	// The simulated series alone are within the estimate without the
	// runtime collectors' reserve.
	mfs := scrapeFamilies(t, h)
	assert.Contains(t, mfs, "app_h")
	assert.Contains(t, mfs, "go_goroutines")
}
