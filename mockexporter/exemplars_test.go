package mockexporter_test

import (
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/mockexporter"
)

const openMetricsAccept = "application/openmetrics-text; version=1.0.0; charset=utf-8"

func openMetrics(t testing.TB, r *mockexporter.Registry) string {
	t.Helper()
	rec := do(t, r.Handler(), http.MethodGet, "/metrics", "", "Accept", openMetricsAccept)
	require.Equal(t, http.StatusOK, rec.Code)
	require.Contains(t, rec.Header().Get("Content-Type"), "application/openmetrics-text")
	return rec.Body.String()
}

func exemplarRegistry(t testing.TB, c *fakeClock, seed int64) *mockexporter.Registry {
	t.Helper()
	r := emptyRegistry(t, c, mockexporter.Options{DisableRuntimeCollectors: true})
	require.NoError(t, r.Declare(mockexporter.MetricOptions{Name: "app_jobs_total", Type: mockexporter.Counter, Exemplars: true, ExemplarSeed: seed}))
	require.NoError(t, r.Declare(mockexporter.MetricOptions{Name: "app_rpc_seconds", Type: mockexporter.Histogram, Buckets: []float64{0.1, 0.5, 1},
		Exemplars: true, ExemplarSeed: seed, LabelNames: []string{"route"}}))
	return r
}

var (
	counterExemplar = regexp.MustCompile(`(?m)^app_jobs_total 3\.0 # \{trace_id="([0-9a-f]{32})"\} 3\.0 (\S+)$`)
	bucketExemplar  = regexp.MustCompile(`(?m)^app_rpc_seconds_bucket\{route="/a",le="0\.5"\} 1 # \{trace_id="([0-9a-f]{32})"\} 0\.3 \S+$`)
	infExemplar     = regexp.MustCompile(`(?m)^app_rpc_seconds_bucket\{route="/a",le="\+Inf"\} 2 # \{trace_id="[0-9a-f]{32}"\} 7\.0 \S+$`)
)

func TestExemplarsOpenMetrics(t *testing.T) {
	c := newClock()
	r := exemplarRegistry(t, c, 7)
	require.NoError(t, r.Add("app_jobs_total", nil, 3))
	require.NoError(t, r.Observe("app_rpc_seconds", mockexporter.Labels{"route": "/a"}, 0.3, 7))
	body := openMetrics(t, r)
	m := counterExemplar.FindStringSubmatch(body)
	require.NotNil(t, m, body)
	assert.Equal(t, "1.7707017e+09", m[2], "the exemplar's timestamp is the increment's instant (as expfmt writes it)")
	hm := bucketExemplar.FindStringSubmatch(body)
	require.NotNil(t, hm, body)
	assert.Regexp(t, infExemplar, body)
	assert.NotEqual(t, m[1], hm[1])
	// The text format carries none.
	assert.NotContains(t, do(t, r.Handler(), http.MethodGet, "/metrics", "").Body.String(), "trace_id")

	// Same seed and clock: same trace IDs; another seed: others.
	c2 := newClock()
	same := exemplarRegistry(t, c2, 7)
	require.NoError(t, same.Add("app_jobs_total", nil, 3))
	assert.Equal(t, m[1], counterExemplar.FindStringSubmatch(openMetrics(t, same))[1])
	other := exemplarRegistry(t, newClock(), 8)
	require.NoError(t, other.Add("app_jobs_total", nil, 3))
	assert.NotEqual(t, m[1], counterExemplar.FindStringSubmatch(openMetrics(t, other))[1])

	// Simulated increments carry exemplars too: the rate's latest read.
	require.NoError(t, r.Set("app_jobs_total", nil, mockexporter.Constant(2)))
	c.Advance(10 * time.Second)
	assert.Regexp(t, `(?m)^app_jobs_total 23\.0 # \{trace_id="[0-9a-f]{32}"\} 20\.0 1\.77070171e\+09$`, openMetrics(t, r))

	assert.ErrorIs(t, r.Declare(mockexporter.MetricOptions{Name: "g", Exemplars: true}), mockexporter.ErrInvalid)
}
