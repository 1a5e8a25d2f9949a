package mockexporter_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/internal/testutil"
	"github.com/promflow/promflow/mockexporter"
	"github.com/promflow/promflow/promflowtest"
)

// protoAccept is what Prometheus (and client_golang's tests) send to get
// the protobuf exposition, the one that carries native histograms.
const protoAccept = `application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited`

// scrapeProto GETs /metrics in the protobuf format and decodes it with
// expfmt.
func scrapeProto(t testing.TB, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	rec := do(t, h, http.MethodGet, "/metrics", "", "Accept", protoAccept)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Equal(t, expfmt.TypeProtoDelim, expfmt.ResponseFormat(rec.Header()).FormatType(), rec.Header().Get("Content-Type"))
	dec := expfmt.NewDecoder(rec.Body, expfmt.ResponseFormat(rec.Header()))
	out := map[string]*dto.MetricFamily{}
	for {
		var mf dto.MetricFamily
		err := dec.Decode(&mf)
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		out[mf.GetName()] = &mf
	}
}

// A summary's count and sum integrate the source like a histogram's; its
// quantiles are those of the window, here a ramp 0 → 100 over the 10m
// window: samples 0.5, 1.5, ... 99.5.
func TestSummary(t *testing.T) {
	c := newClock()
	r := emptyRegistry(t, c, mockexporter.Options{DisableRuntimeCollectors: true})
	require.NoError(t, r.Declare(mockexporter.MetricOptions{Name: "app_latency_ms", Type: mockexporter.Summary, Range: mockexporter.NonNegative}))
	require.NoError(t, r.Set("app_latency_ms", nil, mockexporter.Ramp{From: 0, To: 100, Duration: 10 * time.Minute}))
	c.Advance(10 * time.Minute)
	mf := scrapeFamilies(t, r.Handler())["app_latency_ms"]
	require.NotNil(t, mf)
	assert.Equal(t, dto.MetricType_SUMMARY, mf.GetType())
	sm := mf.GetMetric()[0].GetSummary()
	assert.EqualValues(t, 600, sm.GetSampleCount(), "1 observation/s for 10 minutes")
	assert.InDelta(t, 30000, sm.GetSampleSum(), 1e-6, "the ramp's integral")
	want := map[float64]float64{0.5: 49.5, 0.9: 89.5, 0.99: 98.5}
	require.Len(t, sm.GetQuantile(), 3)
	for _, q := range sm.GetQuantile() {
		assert.InDelta(t, want[q.GetQuantile()], q.GetValue(), 1e-9, "quantile %v", q.GetQuantile())
	}
	// Explicit observations count in the window and the totals.
	require.NoError(t, r.Observe("app_latency_ms", nil, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000))
	v, err := r.Value("app_latency_ms", nil)
	require.NoError(t, err)
	assert.Equal(t, 610.0, v)
	sm = scrapeFamilies(t, r.Handler())["app_latency_ms"].GetMetric()[0].GetSummary()
	assert.Equal(t, 1000.0, sm.GetQuantile()[2].GetValue(), "p99 of 600 simulated + 10 explicit")
	assert.Equal(t, 50.5, sm.GetQuantile()[0].GetValue(), "p50: the 305th of 610")
	assert.InDelta(t, 40000, sm.GetSampleSum(), 1e-6)

	// An empty window answers NaN, as client_golang does.
	require.NoError(t, r.Declare(mockexporter.MetricOptions{Name: "app_empty", Type: mockexporter.Summary, Quantiles: []float64{0.5}}))
	sm = scrapeFamilies(t, r.Handler())["app_empty"].GetMetric()[0].GetSummary()
	assert.True(t, math.IsNaN(sm.GetQuantile()[0].GetValue()))

	for _, bad := range []mockexporter.MetricOptions{
		{Name: "b1", Type: mockexporter.Summary, Quantiles: []float64{0.9, 0.5}},
		{Name: "b2", Type: mockexporter.Summary, Quantiles: []float64{1}},
		{Name: "b3", Type: mockexporter.Summary, LabelNames: []string{"quantile"}},
		{Name: "b4", Type: mockexporter.Gauge, Quantiles: []float64{0.5}},
		{Name: "b5", Type: mockexporter.Summary, MaxAge: mockexporter.Duration(time.Millisecond)},
	} {
		assert.ErrorIs(t, r.Declare(bad), mockexporter.ErrInvalid, bad.Name)
	}
}

// A gauge histogram is the distribution of its window: it goes down.
func TestGaugeHistogram(t *testing.T) {
	c := newClock()
	r := emptyRegistry(t, c, mockexporter.Options{DisableRuntimeCollectors: true})
	require.NoError(t, r.Declare(mockexporter.MetricOptions{Name: "queue_item_age_seconds", Type: mockexporter.GaugeHistogram,
		Range: mockexporter.NonNegative, Buckets: []float64{25, 50, 75, 100}}))
	require.NoError(t, r.Set("queue_item_age_seconds", nil, mockexporter.Ramp{From: 0, To: 100, Duration: 10 * time.Minute}))
	c.Advance(10 * time.Minute)
	rec := do(t, r.Handler(), http.MethodGet, "/metrics", "", "Accept", "application/openmetrics-text; version=1.0.0")
	require.Equal(t, http.StatusOK, rec.Code)
	body := rec.Body.String()
	assert.Contains(t, body, "# TYPE queue_item_age_seconds gaugehistogram\n")
	for _, line := range []string{
		`queue_item_age_seconds_bucket{le="25.0"} 150`, `queue_item_age_seconds_bucket{le="50.0"} 300`,
		`queue_item_age_seconds_bucket{le="75.0"} 450`, `queue_item_age_seconds_bucket{le="+Inf"} 600`,
		"queue_item_age_seconds_count 600", "queue_item_age_seconds_sum 30000.0",
	} {
		assert.Contains(t, body, line+"\n")
	}
	mf := scrapeProto(t, r.Handler())["queue_item_age_seconds"]
	require.NotNil(t, mf)
	assert.Equal(t, dto.MetricType_GAUGE_HISTOGRAM, mf.GetType())

	// expfmt's OpenMetrics 1.0 encoder names the window's count and sum
	// _count and _sum (not _gcount, _gsum).
	// Twenty minutes later the ramp holds 100: every item is in the last
	// bucket, the lower ones went down.
	c.Advance(20 * time.Minute)
	h := scrapeProto(t, r.Handler())["queue_item_age_seconds"].GetMetric()[0].GetHistogram()
	assert.EqualValues(t, 600, h.GetSampleCount())
	assert.EqualValues(t, 0, h.GetBucket()[2].GetCumulativeCount())
	assert.EqualValues(t, 600, h.GetBucket()[3].GetCumulativeCount())
	v, err := r.Value("queue_item_age_seconds", nil)
	require.NoError(t, err)
	assert.Equal(t, 600.0, v)
}

// nativeBuckets expands spans and deltas into bucket index → count.
func nativeBuckets(spans []*dto.BucketSpan, deltas []int64) map[int]int64 {
	out := map[int]int64{}
	idx, i := 0, 0
	var cur int64
	for n, s := range spans {
		if n == 0 {
			idx = int(s.GetOffset())
		} else {
			idx += int(s.GetOffset())
		}
		for range s.GetLength() {
			cur += deltas[i]
			out[idx] = cur
			idx++
			i++
		}
	}
	return out
}

func TestNativeHistogramProtobuf(t *testing.T) {
	c := newClock()
	r := emptyRegistry(t, c, mockexporter.Options{DisableRuntimeCollectors: true})
	// Classic and native together; and native only (buckets: []).
	require.NoError(t, r.Declare(mockexporter.MetricOptions{Name: "rpc_seconds", Type: mockexporter.Histogram, Buckets: []float64{1, 2.5}, NativeBucketFactor: 1.1}))
	require.NoError(t, r.Declare(mockexporter.MetricOptions{Name: "rpc_native_seconds", Type: mockexporter.Histogram, Buckets: []float64{}, NativeBucketFactor: 2}))
	for _, name := range []string{"rpc_seconds", "rpc_native_seconds"} {
		require.NoError(t, r.Observe(name, nil, 0, 1.5, 3, -2, 1.6))
	}
	mfs := scrapeProto(t, r.Handler())
	h := mfs["rpc_seconds"].GetMetric()[0].GetHistogram()
	assert.EqualValues(t, 3, h.GetSchema(), "factor 1.1 → schema 3, as client_golang picks")
	assert.EqualValues(t, 5, h.GetSampleCount())
	assert.InDelta(t, 4.1, h.GetSampleSum(), 1e-9)
	assert.EqualValues(t, 1, h.GetZeroCount())
	assert.Equal(t, 2.938735877055719e-39, h.GetZeroThreshold())
	// schema 3: 1.5 → ceil(8·log2 1.5) = 5, 1.6 → 6, 3 → 13; -2 → 8.
	assert.Equal(t, map[int]int64{5: 1, 6: 1, 13: 1}, nativeBuckets(h.GetPositiveSpan(), h.GetPositiveDelta()))
	assert.Equal(t, map[int]int64{8: 1}, nativeBuckets(h.GetNegativeSpan(), h.GetNegativeDelta()))
	require.Len(t, h.GetBucket(), 2, "the classic buckets are there too")
	assert.EqualValues(t, 2, h.GetBucket()[0].GetCumulativeCount(), "le=1: 0 and -2")
	assert.EqualValues(t, 4, h.GetBucket()[1].GetCumulativeCount())

	n := mfs["rpc_native_seconds"].GetMetric()[0].GetHistogram()
	assert.EqualValues(t, 0, n.GetSchema(), "factor 2 → schema 0")
	assert.Empty(t, n.GetBucket())
	// schema 0: (1, 2] is bucket 1, (2, 4] bucket 2; -2 is in (1, 2].
	assert.Equal(t, map[int]int64{1: 2, 2: 1}, nativeBuckets(n.GetPositiveSpan(), n.GetPositiveDelta()))
	assert.Equal(t, map[int]int64{1: 1}, nativeBuckets(n.GetNegativeSpan(), n.GetNegativeDelta()))

	// The text format keeps the classic buckets only.
	text := do(t, r.Handler(), http.MethodGet, "/metrics", "").Body.String()
	assert.Contains(t, text, `rpc_seconds_bucket{le="2.5"} 4`)
	assert.Contains(t, text, "rpc_native_seconds_count 5")

	// Simulated observations: the populations still add up to the count.
	require.NoError(t, r.Set("rpc_seconds", nil, mockexporter.Noise{Seed: 3, Base: 1, Amplitude: 0.9, Interval: time.Second}))
	c.Advance(90 * time.Second)
	h = scrapeProto(t, r.Handler())["rpc_seconds"].GetMetric()[0].GetHistogram()
	var total int64
	for _, v := range nativeBuckets(h.GetPositiveSpan(), h.GetPositiveDelta()) {
		total += v
	}
	for _, v := range nativeBuckets(h.GetNegativeSpan(), h.GetNegativeDelta()) {
		total += v
	}
	assert.EqualValues(t, h.GetSampleCount(), total+int64(h.GetZeroCount()))
	assert.InDelta(t, 95, float64(h.GetSampleCount()), 1)
}

// A series keeps at most MaxBuckets native buckets a sign, lowering its
// resolution as client_golang does.
func TestNativeHistogramResolutionLimit(t *testing.T) {
	c := newClock()
	r := emptyRegistry(t, c, mockexporter.Options{DisableRuntimeCollectors: true, MaxBuckets: 4})
	require.NoError(t, r.Declare(mockexporter.MetricOptions{Name: "wide", Type: mockexporter.Histogram, Buckets: []float64{1}, NativeBucketFactor: 1.01}))
	require.NoError(t, r.Observe("wide", nil, 1, 10, 100, 1000, 1e4, 1e5))
	h := scrapeProto(t, r.Handler())["wide"].GetMetric()[0].GetHistogram()
	got := nativeBuckets(h.GetPositiveSpan(), h.GetPositiveDelta())
	assert.LessOrEqual(t, len(got), 4)
	assert.Less(t, h.GetSchema(), int32(6), "resolution lowered from schema 6")
	var total int64
	for _, v := range got {
		total += v
	}
	assert.EqualValues(t, 6, total)
	assert.ErrorIs(t, r.Declare(mockexporter.MetricOptions{Name: "bad", Type: mockexporter.Histogram, NativeBucketFactor: 0.5}), mockexporter.ErrInvalid)
	assert.ErrorIs(t, r.Declare(mockexporter.MetricOptions{Name: "bad", Type: mockexporter.Gauge, NativeBucketFactor: 1.1}), mockexporter.ErrInvalid)
}

// Debian's Prometheus 2.42 scrapes the native histogram (protobuf, with
// --enable-feature=native-histograms) and answers histogram_count and
// histogram_sum.
func TestPrometheusScrapesNativeHistogram(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Prometheus server")
	}
	me := promflowtest.MockExporter(t, mockexporter.Options{Empty: true})
	reg := me.Registry
	require.NoError(t, reg.Declare(mockexporter.MetricOptions{Name: "rpc_seconds", Type: mockexporter.Histogram, Buckets: []float64{1, 2.5}, NativeBucketFactor: 1.1}))
	require.NoError(t, reg.Observe("rpc_seconds", nil, 0.5, 1.5, 3))
	prom := promflowtest.Prometheus(t, promflowtest.PrometheusOptions{
		ScrapeConfigs: []promflowtest.ScrapeConfig{{JobName: "mock", Targets: []string{strings.TrimPrefix(me.Server.URL, "http://")}}},
		ExtraArgs:     []string{"--enable-feature=native-histograms"},
	})
	client, err := api.NewClient(api.Config{Address: prom.URL})
	require.NoError(t, err)
	papi := v1.NewAPI(client)
	expect := func(q string, want float64) func() error {
		return func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			v, _, _, err := papi.Query(ctx, q, time.Now())
			if err != nil {
				return err
			}
			vec, ok := v.(model.Vector)
			if !ok || len(vec) != 1 {
				return fmt.Errorf("%s: got %v", q, v)
			}
			if got := float64(vec[0].Value); got != want {
				return fmt.Errorf("%s = %v, want %v", q, got, want)
			}
			return nil
		}
	}
	// The simulated observations (1 a second, value 0) come on top of the
	// three explicit ones: count the explicit sum only.
	testutil.Eventually(t, 60*time.Second, expect(`histogram_sum(rpc_seconds{job="mock"})`, 5))
	testutil.Eventually(t, 30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		v, _, _, err := papi.Query(ctx, `histogram_count(rpc_seconds{job="mock"}) >= 3`, time.Now())
		if err != nil {
			return err
		}
		if vec, ok := v.(model.Vector); !ok || len(vec) != 1 {
			return fmt.Errorf("histogram_count: got %v", v)
		}
		return nil
	})
	// The classic buckets are kept beside the native ones only with
	// scrape_classic_histograms; without it, the native histogram alone.
	testutil.Eventually(t, 30*time.Second, expect(`count(rpc_seconds_bucket{job="mock"}) or vector(0)`, 0))
}
