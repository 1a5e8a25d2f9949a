package promquery_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/internal/testutil"
	"github.com/promflow/promflow/mockexporter"
	"github.com/promflow/promflow/promflowtest"
	"github.com/promflow/promflow/promquery"
)

// nastyValues are label values that would break a query built by string
// concatenation. Each is exported as its own series.
var nastyValues = []string{
	`quote"inside`,
	`back\slash`,
	"new\nline",
	`brace}close`,
	"back`tick",
	`=~.*`,
	`.*`,
	"ünïcödé ✓ 日本語",
	`\"} or vector(1) #`,
	"tab\there",
	`'single'`,
	`a|b(c)[d]{e}^$`,
}

// injections must match nothing: if any of them broke out of its string,
// vector(1), a regex wildcard or an `or` would return samples.
var injections = []string{
	`a"} or vector(1) #`,
	`a"} or vector(1) or up{job="`,
	"a\"}\nor vector(1)",
	"a` or vector(1) #",
	`a\"} or vector(1) #`,
	`.+`,
	`"`,
	`\`,
}

// engineKind is a kind of server that speaks the Prometheus HTTP API.
type engineKind int

const (
	// prometheus2 is Debian's prometheus package (2.42).
	prometheus2 engineKind = iota
	// prometheus3 is Prometheus 3 built from the Go module proxy
	// (promflowtest.Prometheus3Binary).
	prometheus3
	// victoriaMetrics is Debian's single-node victoria-metrics (1.79),
	// scraping the targets itself.
	victoriaMetrics
)

// engine is a server the integration tests run against; each test runs
// once per engine, as a subtest named after it.
type engine struct {
	name string
	kind engineKind
}

var engines = []engine{
	{"prometheus-2", prometheus2},
	{"prometheus-3", prometheus3},
	{"victoriametrics", victoriaMetrics},
}

// isPrometheus reports whether the engine is a Prometheus server (rules,
// alerts, native histograms, warnings from remote read).
func (e engine) isPrometheus() bool { return e.kind != victoriaMetrics }

// skipOn skips the test on the engine of that kind, saying why. The
// reasons are differences of the engines, documented in docs/design.md.
func (e engine) skipOn(t *testing.T, kind engineKind, reason string) {
	t.Helper()
	if e.kind == kind {
		t.Skipf("%s: %s", e.name, reason)
	}
}

// eachEngine runs f as a subtest per engine. A missing binary skips that
// engine's subtest (fails with CI set).
func eachEngine(t *testing.T, f func(t *testing.T, eng engine)) {
	for _, eng := range engines {
		t.Run(eng.name, func(t *testing.T) { f(t, eng) })
	}
}

// prometheusBinary is the prometheus executable of a Prometheus engine.
func prometheusBinary(t *testing.T, eng engine) string {
	t.Helper()
	if eng.kind == prometheus3 {
		return promflowtest.Prometheus3Binary(t)
	}
	bin, err := promflowtest.LookBinary("prometheus", "prometheus")
	if err != nil {
		testutil.SkipOrFail(t, "%v", err)
	}
	return bin
}

// env is a real engine scraping a mockexporter (the hostile-valued gauge),
// a client_golang registry (a native histogram, which mockexporter does
// not simulate, and a metric with a UTF-8 name) and a target that is down.
type env struct {
	eng     engine
	url     string
	client  *promquery.Client
	appAddr string
	mock    *mockexporter.Registry
}

const ruleFile = `
groups:
  - name: promquery-test
    rules:
      - alert: PromqueryTestAlert
        expr: promquery_test_gauge{tag="plain"} > 0
        for: 0s
        labels:
          severity: page
        annotations:
          summary: 'gauge is {{ $value }}'
      - record: promquery:test_gauge:count
        expr: count(promquery_test_gauge)
`

// startEnv starts a real Prometheus scraping a mockexporter whose gauge
// promquery_test_gauge has one series per hostile label value, a registry
// with one native histogram, and a target that is down, with an alerting
// and a recording rule. testutil servers belong to the test that started
// them, so related checks are subtests of few tests.
func startEnv(t *testing.T, eng engine) *env {
	t.Helper()
	me := promflowtest.MockExporter(t, mockexporter.Options{Empty: true, DisableRuntimeCollectors: true})
	mock, app := me.Registry, me.Server
	require.NoError(t, mock.Declare(mockexporter.MetricOptions{
		Name: "promquery_test_gauge", Help: "Test gauge with hostile label values.",
		Type: mockexporter.Gauge, LabelNames: []string{"tag"},
	}))
	require.NoError(t, mock.SetValue("promquery_test_gauge", mockexporter.Labels{"tag": "plain"}, 1))
	for i, v := range nastyValues {
		require.NoError(t, mock.SetValue("promquery_test_gauge", mockexporter.Labels{"tag": v}, float64(i+2)), "value %q", v)
	}
	appAddr := strings.TrimPrefix(app.URL, "http://")

	reg := prometheus.NewRegistry()
	hist := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "promquery_test_native_seconds", Help: "A native histogram.",
		NativeHistogramBucketFactor: 1.1,
	})
	reg.MustRegister(hist)
	for _, v := range []float64{0.01, 0.2, 0.3, 1.5, 7} {
		hist.Observe(v)
	}
	native := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(native.Close)
	utf8Srv := utf8Exporter(t)

	downAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(testutil.FreePort(t)))
	scrapes := []promflowtest.ScrapeConfig{
		{JobName: "app", Targets: []string{appAddr}},
		{JobName: "native", Targets: []string{strings.TrimPrefix(native.URL, "http://")}, NativeHistograms: eng.kind == prometheus3},
		{JobName: "down", Targets: []string{downAddr}},
		{JobName: "utf8", Targets: []string{strings.TrimPrefix(utf8Srv.URL, "http://")}},
	}
	var url string
	if eng.kind == victoriaMetrics {
		url = promflowtest.VictoriaMetrics(t, promflowtest.VictoriaMetricsOptions{ScrapeConfigs: scrapes}).URL
	} else {
		url = promflowtest.Prometheus(t, promflowtest.PrometheusOptions{
			Binary:        prometheusBinary(t, eng),
			ScrapeConfigs: scrapes,
			RuleFiles:     map[string]string{"rules.yml": ruleFile},
			ExtraArgs:     nativeHistogramArgs(eng),
		}).URL
	}
	c, err := promquery.New(url, promquery.Options{PollInterval: 50 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = c.WaitTargetUp(ctx, "app", appAddr)
	require.NoError(t, err)
	_, err = c.WaitForValue(ctx, `count(promquery_test_gauge)`, func(v model.Vector) bool {
		return len(v) == 1 && int(v[0].Value) == len(nastyValues)+1
	})
	require.NoError(t, err)
	return &env{eng: eng, url: url, client: c, appAddr: appAddr, mock: mock}
}

// The UTF-8 metric of the client_golang registry: names outside the
// legacy character set, which only Prometheus 3 stores as they are.
const (
	utf8Metric = "promquery.test.utf8"
	utf8Label  = "label.with.dots"
	utf8Value  = "ünï ✓"
)

// utf8Exporter serves a client_golang registry holding one gauge with a
// UTF-8 metric and label name. OpenMetrics is on: Prometheus 3 asks for
// OpenMetrics 1.0.0 with escaping=allow-utf-8 first, and client_golang
// keeps UTF-8 names only in a format whose Accept clause allows them (its
// protobuf and text 0.0.4 answers escape them to underscores).
func utf8Exporter(t *testing.T) *httptest.Server {
	reg := prometheus.NewRegistry()
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: utf8Metric, Help: "A metric with a UTF-8 name."}, []string{utf8Label})
	reg.MustRegister(g)
	g.WithLabelValues(utf8Value).Set(5)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true}))
	t.Cleanup(srv.Close)
	return srv
}

// testUTF8Names: on Prometheus 3 a UTF-8 metric and label name round-trip
// through the selector builder (which quotes them), Series, LabelNames and
// LabelValues (whose path carries the name U__-escaped). Prometheus 2.42
// and VictoriaMetrics 1.79 do not ask for UTF-8 names when they scrape, so
// client_golang escapes them to underscores; a quoted name is no PromQL
// for Prometheus 2.
func testUTF8Names(t *testing.T, e *env) {
	ctx := ctx30(t)
	c := e.client
	sel := promquery.Select(utf8Metric, promquery.Eq(utf8Label, utf8Value))
	assert.Equal(t, `{__name__="promquery.test.utf8","label.with.dots"="ünï ✓"}`, sel.String())
	if e.eng.kind != prometheus3 {
		escaped := promquery.Select("promquery_test_utf8", promquery.Eq("label_with_dots", utf8Value))
		v, err := c.WaitForValue(ctx, escaped.String(), nil)
		require.NoError(t, err)
		require.Len(t, v, 1)
		assert.Equal(t, model.SampleValue(5), v[0].Value)
		_, _, err = c.Vector(ctx, sel.String(), time.Time{})
		if e.eng.kind == prometheus2 {
			var apiErr *promquery.APIError
			require.ErrorAs(t, err, &apiErr)
			assert.True(t, apiErr.BadQuery())
		}
		return
	}
	v, err := c.WaitForValue(ctx, sel.String(), nil)
	require.NoError(t, err)
	require.Len(t, v, 1)
	assert.Equal(t, model.LabelValue(utf8Metric), v[0].Metric[model.MetricNameLabel])
	assert.Equal(t, model.LabelValue(utf8Value), v[0].Metric[utf8Label])
	assert.Equal(t, model.SampleValue(5), v[0].Value)

	series, _, err := c.Series(ctx, []string{sel.String()}, time.Now().Add(-time.Hour), time.Now())
	require.NoError(t, err)
	require.Len(t, series, 1)
	assert.Equal(t, model.LabelValue(utf8Metric), series[0][model.MetricNameLabel])
	names, _, err := c.LabelNames(ctx, []string{sel.String()}, time.Time{}, time.Time{})
	require.NoError(t, err)
	assert.Contains(t, names, utf8Label)
	values, _, err := c.LabelValues(ctx, utf8Label, nil, time.Time{}, time.Time{})
	require.NoError(t, err)
	assert.Equal(t, model.LabelValues{utf8Value}, values)
	metrics, _, err := c.LabelValues(ctx, model.MetricNameLabel, []string{sel.String()}, time.Time{}, time.Time{})
	require.NoError(t, err)
	assert.Equal(t, model.LabelValues{utf8Metric}, metrics)
	// A regular expression on the name and the injection-safe quoting
	// hold for UTF-8 names too.
	re := promquery.Select("", promquery.Re(model.MetricNameLabel, promquery.LiteralRegex(utf8Metric)), promquery.Neq(utf8Label, `x"} or vector(1) #`))
	v, _, err = c.Vector(ctx, re.String(), time.Time{})
	require.NoError(t, err)
	require.Len(t, v, 1)
}

// nativeHistogramArgs turns on native histograms where a flag does it:
// Prometheus 2 needs --enable-feature=native-histograms; Prometheus 3 takes
// scrape_native_histograms in the scrape job instead (the flag is a no-op
// there).
func nativeHistogramArgs(eng engine) []string {
	if eng.kind == prometheus2 {
		return []string{"--enable-feature=native-histograms"}
	}
	return nil
}

func ctx30(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestRealPrometheus runs the typed calls, errors, streaming and limits
// against each engine (Prometheus 2, Prometheus 3, VictoriaMetrics).
func TestRealPrometheus(t *testing.T) { eachEngine(t, testEngine) }

func testEngine(t *testing.T, eng engine) {
	e := startEnv(t, eng)
	c := e.client

	t.Run("HealthyReady", func(t *testing.T) {
		ctx := ctx30(t)
		require.NoError(t, c.Healthy(ctx))
		require.NoError(t, c.Ready(ctx))
	})

	t.Run("Targets", func(t *testing.T) {
		// VictoriaMetrics answers /api/v1/targets for what it scrapes
		// itself (-promscrape.config) in Prometheus' format.
		ctx := ctx30(t)
		// The down target is reported down with its scrape error.
		testutil.Eventually(t, 30*time.Second, func() error {
			ts, _, err := c.Targets(ctx, promquery.TargetsActive)
			if err != nil {
				return err
			}
			for _, tg := range ts.Active {
				if tg.Labels["job"] == "down" {
					if tg.Health == promquery.HealthDown && tg.LastError != "" {
						return nil
					}
					return fmt.Errorf("down target is %q", tg.Health)
				}
			}
			return errors.New("down target missing")
		})
		ts, _, err := c.Targets(ctx, promquery.TargetsAny)
		require.NoError(t, err)
		require.Len(t, ts.Active, 4)
		var up promquery.ActiveTarget
		for _, tg := range ts.Active {
			if tg.Labels["job"] == "app" {
				up = tg
			}
		}
		assert.Equal(t, promquery.HealthUp, up.Health)
		assert.Equal(t, "http://"+e.appAddr+"/metrics", up.ScrapeURL)
		assert.Equal(t, "app", up.ScrapePool)
		assert.False(t, up.LastScrape.IsZero())
		assert.NotNil(t, ts.Dropped)

		dropped, _, err := c.Targets(ctx, promquery.TargetsDropped)
		require.NoError(t, err)
		assert.Empty(t, dropped.Active)

		_, _, err = c.Targets(ctx, "bogus")
		require.ErrorIs(t, err, promquery.ErrInvalidArgument)

		// Waiting for the down target gives up with the context and says why.
		// (3 s: the first poll must finish before the deadline even on a
		// loaded machine, or there is no reason to report.)
		short, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		_, err = c.WaitTargetUp(short, "down", "")
		require.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Contains(t, err.Error(), "is down", "the error reports the target's health")
	})

	t.Run("Vector", func(t *testing.T) {
		ctx := ctx30(t)
		v, meta, err := c.Vector(ctx, promquery.Select("promquery_test_gauge").String(), time.Time{})
		require.NoError(t, err)
		assert.Empty(t, meta.Warnings)
		require.Len(t, v, len(nastyValues)+1)
		got := map[string]float64{}
		for _, s := range v {
			got[string(s.Metric["tag"])] = float64(s.Value)
			assert.Equal(t, model.LabelValue("promquery_test_gauge"), s.Metric[model.MetricNameLabel])
			assert.Equal(t, model.LabelValue("app"), s.Metric["job"])
			assert.WithinDuration(t, time.Now(), s.Timestamp.Time(), time.Minute)
		}
		assert.Equal(t, 1.0, got["plain"])
		for i, nv := range nastyValues {
			assert.Equal(t, float64(i+2), got[nv], "value %q", nv)
		}

		// At an explicit evaluation time.
		at := time.Now().Add(-time.Second).Truncate(time.Millisecond)
		v, _, err = c.Vector(ctx, `vector(3)`, at)
		require.NoError(t, err)
		require.Len(t, v, 1)
		assert.Equal(t, model.TimeFromUnixNano(at.UnixNano()), v[0].Timestamp)
		assert.Equal(t, model.SampleValue(3), v[0].Value)

		// Empty result is an empty, non-nil vector.
		v, _, err = c.Vector(ctx, `promquery_test_gauge{tag="no such value"}`, time.Time{})
		require.NoError(t, err)
		assert.NotNil(t, v)
		assert.Empty(t, v)

		v, _, err = c.Vector(ctx, `scalar(vector(1))`, time.Time{})
		if eng.isPrometheus() {
			require.ErrorIs(t, err, promquery.ErrUnexpectedResultType)
		} else {
			// MetricsQL has no scalar type: a scalar expression is a
			// one-sample vector without labels.
			require.NoError(t, err)
			require.Len(t, v, 1)
			assert.Empty(t, v[0].Metric)
			assert.Equal(t, model.SampleValue(1), v[0].Value)
		}
	})

	t.Run("NativeHistogram", func(t *testing.T) {
		ctx := ctx30(t)
		if !eng.isPrometheus() {
			// VictoriaMetrics 1.79 has no native histograms: it scrapes the
			// text format, where this histogram (no classic buckets
			// declared) is its _count, _sum and le="+Inf" bucket.
			v, err := c.WaitForValue(ctx, `promquery_test_native_seconds_count`, nil)
			require.NoError(t, err)
			require.Len(t, v, 1)
			assert.Equal(t, model.SampleValue(5), v[0].Value)
			assert.Nil(t, v[0].Histogram)
			v, err = c.WaitForValue(ctx, `promquery_test_native_seconds_sum`, nil)
			require.NoError(t, err)
			assert.InDelta(t, 9.01, float64(v[0].Value), 1e-9)
			t.Skipf("%s: no native histograms; checked the classic _count and _sum", eng.name)
		}
		v, err := c.WaitForValue(ctx, `promquery_test_native_seconds`, nil)
		require.NoError(t, err)
		require.Len(t, v, 1)
		h := v[0].Histogram
		require.NotNil(t, h, "sample %v", v[0])
		assert.Equal(t, model.FloatString(5), h.Count)
		assert.InDelta(t, 9.01, float64(h.Sum), 1e-9)
		assert.NotEmpty(t, h.Buckets)

		end := time.Now()
		m, _, err := c.Matrix(ctx, `promquery_test_native_seconds`, promquery.Range{Start: end.Add(-5 * time.Second), End: end, Step: time.Second})
		require.NoError(t, err)
		require.Len(t, m, 1)
		require.NotEmpty(t, m[0].Histograms)
		assert.Equal(t, model.FloatString(5), m[0].Histograms[0].Histogram.Count)
	})

	t.Run("Scalar", func(t *testing.T) {
		ctx := ctx30(t)
		if !eng.isPrometheus() {
			// MetricsQL answers scalar expressions with a vector: Scalar
			// says so (ErrUnexpectedResultType) rather than guessing, and
			// Vector reads the value.
			_, _, err := c.Scalar(ctx, `scalar(sum(promquery_test_gauge{tag="plain"}))`, time.Time{})
			require.ErrorIs(t, err, promquery.ErrUnexpectedResultType)
			v, _, err := c.Vector(ctx, `1/0`, time.Time{})
			require.NoError(t, err)
			require.Len(t, v, 1)
			assert.True(t, float64(v[0].Value) > 1e308, "got %v", v[0].Value)
			return
		}
		s, _, err := c.Scalar(ctx, `scalar(sum(promquery_test_gauge{tag="plain"}))`, time.Time{})
		require.NoError(t, err)
		assert.Equal(t, model.SampleValue(1), s.Value)
		s, _, err = c.Scalar(ctx, `1/0`, time.Time{})
		require.NoError(t, err)
		assert.True(t, float64(s.Value) > 1e308, "got %v", s.Value)
		_, _, err = c.Scalar(ctx, `vector(1)`, time.Time{})
		require.ErrorIs(t, err, promquery.ErrUnexpectedResultType)
	})

	t.Run("QueryAnyType", func(t *testing.T) {
		ctx := ctx30(t)
		r, _, err := c.Query(ctx, `promquery_test_gauge{tag="plain"}[10s]`, time.Time{})
		require.NoError(t, err)
		assert.Equal(t, model.ValMatrix, r.Type)
		require.Len(t, r.Matrix, 1)
		assert.NotEmpty(t, r.Matrix[0].Values)

		r, _, err = c.Query(ctx, `vector(2)`, time.Time{})
		require.NoError(t, err)
		assert.Equal(t, model.ValVector, r.Type)
		assert.Len(t, r.Vector, 1)

		r, _, err = c.Query(ctx, `time()`, time.Unix(1700000000, 0))
		require.NoError(t, err)
		if !eng.isPrometheus() {
			// No scalar and no string type in MetricsQL: time() is a
			// vector, and a string literal an empty vector.
			assert.Equal(t, model.ValVector, r.Type)
			require.Len(t, r.Vector, 1)
			assert.Equal(t, model.SampleValue(1700000000), r.Vector[0].Value)
			r, _, err = c.Query(ctx, `"hello \"world\""`, time.Time{})
			require.NoError(t, err)
			assert.Equal(t, model.ValVector, r.Type)
			assert.Empty(t, r.Vector)
			return
		}
		assert.Equal(t, model.ValScalar, r.Type)
		assert.Equal(t, model.SampleValue(1700000000), r.Scalar.Value)

		r, _, err = c.Query(ctx, `"hello \"world\""`, time.Time{})
		require.NoError(t, err)
		assert.Equal(t, model.ValString, r.Type)
		assert.Equal(t, `hello "world"`, r.String.Value)
		assert.Equal(t, model.ValString, r.Value().Type())
	})

	t.Run("MatrixAndStream", func(t *testing.T) {
		ctx := ctx30(t)
		// End a little in the future so the range surely holds the
		// samples scraped so far (the lookback covers the future steps).
		end := time.Now().Add(2 * time.Second).Truncate(time.Second)
		rng := promquery.Range{Start: end.Add(-10 * time.Second), End: end, Step: time.Second}
		q := promquery.Select("promquery_test_gauge").String()
		m, _, err := c.Matrix(ctx, q, rng)
		require.NoError(t, err)
		require.Len(t, m, len(nastyValues)+1)
		for _, ss := range m {
			require.NotEmpty(t, ss.Values)
			for _, p := range ss.Values {
				assert.False(t, p.Timestamp.Before(model.TimeFromUnixNano(rng.Start.UnixNano())))
				assert.False(t, p.Timestamp.After(model.TimeFromUnixNano(rng.End.UnixNano())))
			}
		}
		var streamed model.Matrix
		_, err = c.StreamMatrix(ctx, q, rng, func(ss *model.SampleStream) error {
			streamed = append(streamed, ss)
			return nil
		})
		require.NoError(t, err)
		assert.Equal(t, m, streamed)

		// The callback's error stops the stream and comes back.
		stop := errors.New("enough")
		calls := 0
		_, err = c.StreamMatrix(ctx, q, rng, func(*model.SampleStream) error { calls++; return stop })
		require.ErrorIs(t, err, stop)
		assert.Equal(t, 1, calls)

		raw, err := c.QueryRangeRaw(ctx, q, rng)
		require.NoError(t, err)
		var data struct {
			ResultType string       `json:"resultType"`
			Result     model.Matrix `json:"result"`
		}
		require.NoError(t, json.Unmarshal(raw.Data, &data))
		assert.Equal(t, "matrix", data.ResultType)
		sortMatrix(data.Result)
		sortMatrix(m)
		assert.Equal(t, m, data.Result)

		_, _, err = c.Matrix(ctx, q, promquery.Range{Start: end, End: end.Add(-time.Second), Step: time.Second})
		require.ErrorIs(t, err, promquery.ErrInvalidArgument)
		_, _, err = c.Matrix(ctx, q, promquery.Range{Start: end, End: end})
		require.ErrorIs(t, err, promquery.ErrInvalidArgument)
	})

	t.Run("QueryRaw", func(t *testing.T) {
		ctx := ctx30(t)
		raw, err := c.QueryRaw(ctx, `promquery_test_gauge{tag="plain"}`, time.Time{})
		require.NoError(t, err)
		var data struct {
			ResultType string       `json:"resultType"`
			Result     model.Vector `json:"result"`
		}
		require.NoError(t, json.Unmarshal(raw.Data, &data))
		assert.Equal(t, "vector", data.ResultType)
		require.Len(t, data.Result, 1)
		assert.Equal(t, model.SampleValue(1), data.Result[0].Value)

		_, err = c.QueryRaw(ctx, `sum(`, time.Time{})
		assertBadQuery(t, eng, err)
	})

	t.Run("Stats", func(t *testing.T) {
		eng.skipOn(t, victoriaMetrics, "VictoriaMetrics ignores stats=all (1.79 sends no statistics; later versions put theirs outside data)")
		ctx := ctx30(t)
		_, meta, err := c.Vector(ctx, `promquery_test_gauge`, time.Time{}, promquery.WithStats("all"))
		require.NoError(t, err)
		require.NotEmpty(t, meta.Stats)
		var stats map[string]any
		require.NoError(t, json.Unmarshal(meta.Stats, &stats))
		assert.Contains(t, stats, "timings")
	})

	t.Run("Infos", func(t *testing.T) {
		// Prometheus 3 annotates a rate over a metric whose name is not a
		// counter's with an info; the others answer without annotations.
		ctx := ctx30(t)
		_, meta, err := c.Vector(ctx, `rate(promquery_test_gauge{tag="plain"}[5s])`, time.Time{})
		require.NoError(t, err)
		assert.Empty(t, meta.Warnings)
		if eng.kind == prometheus3 {
			require.NotEmpty(t, meta.Infos)
			assert.Contains(t, strings.Join(meta.Infos, "\n"), "might not be a counter")
		} else {
			assert.Empty(t, meta.Infos)
		}
	})

	t.Run("SeriesAndLabels", func(t *testing.T) {
		ctx := ctx30(t)
		sel := promquery.Select("promquery_test_gauge", promquery.Eq("tag", `quote"inside`)).String()
		series, _, err := c.Series(ctx, []string{sel}, time.Now().Add(-time.Hour), time.Now())
		require.NoError(t, err)
		require.Len(t, series, 1)
		assert.Equal(t, model.LabelValue(`quote"inside`), series[0]["tag"])

		_, _, err = c.Series(ctx, nil, time.Time{}, time.Time{})
		require.ErrorIs(t, err, promquery.ErrInvalidArgument)

		names, _, err := c.LabelNames(ctx, []string{promquery.Select("promquery_test_gauge").String()}, time.Time{}, time.Time{})
		require.NoError(t, err)
		assert.Equal(t, []string{"__name__", "instance", "job", "tag"}, names)

		all, _, err := c.LabelNames(ctx, nil, time.Time{}, time.Time{})
		require.NoError(t, err)
		assert.Contains(t, all, "tag")

		values, _, err := c.LabelValues(ctx, "tag", []string{promquery.Select("promquery_test_gauge").String()}, time.Time{}, time.Time{})
		require.NoError(t, err)
		want := append([]string{"plain"}, nastyValues...)
		sort.Strings(want)
		gotVals := make([]string, len(values))
		for i, v := range values {
			gotVals[i] = string(v)
		}
		sort.Strings(gotVals)
		assert.Equal(t, want, gotVals)

		jobs, _, err := c.LabelValues(ctx, "job", nil, time.Time{}, time.Time{})
		require.NoError(t, err)
		assert.Contains(t, jobs, model.LabelValue("app"))

		_, _, err = c.LabelValues(ctx, "", nil, time.Time{}, time.Time{})
		require.ErrorIs(t, err, promquery.ErrInvalidArgument)
	})

	t.Run("UTF8Names", func(t *testing.T) { testUTF8Names(t, e) })

	t.Run("RulesAndAlerts", func(t *testing.T) {
		ctx := ctx30(t)
		if !eng.isPrometheus() {
			// VictoriaMetrics single evaluates no rules (vmalert does, and
			// answers these endpoints itself): both lists are empty, not
			// an error.
			groups, _, err := c.Rules(ctx)
			require.NoError(t, err)
			assert.Empty(t, groups)
			alerts, _, err := c.Alerts(ctx)
			require.NoError(t, err)
			assert.Empty(t, alerts)
			t.Skipf("%s: rules and alerts are vmalert's, not VictoriaMetrics single's; checked that both lists are empty", eng.name)
		}
		var alerts []promquery.Alert
		testutil.Eventually(t, 30*time.Second, func() error {
			var err error
			alerts, _, err = c.Alerts(ctx)
			if err != nil {
				return err
			}
			if len(alerts) == 1 && alerts[0].State == promquery.AlertFiring {
				return nil
			}
			return fmt.Errorf("alerts: %+v", alerts)
		})
		a := alerts[0]
		assert.Equal(t, model.LabelValue("PromqueryTestAlert"), a.Labels[model.AlertNameLabel])
		assert.Equal(t, model.LabelValue("page"), a.Labels["severity"])
		assert.Equal(t, model.LabelValue("gauge is 1"), a.Annotations["summary"])
		assert.False(t, a.ActiveAt.IsZero())

		groups, _, err := c.Rules(ctx)
		require.NoError(t, err)
		require.Len(t, groups, 1)
		g := groups[0]
		assert.Equal(t, "promquery-test", g.Name)
		assert.Equal(t, time.Second, g.Interval)
		require.Len(t, g.AlertingRules, 1)
		require.Len(t, g.RecordingRules, 1)
		ar := g.AlertingRules[0]
		assert.Equal(t, "PromqueryTestAlert", ar.Name)
		assert.Equal(t, `promquery_test_gauge{tag="plain"} > 0`, ar.Query)
		assert.Equal(t, promquery.AlertFiring, ar.State)
		assert.Equal(t, promquery.RuleOK, ar.Health)
		require.Len(t, ar.Alerts, 1)
		rr := g.RecordingRules[0]
		assert.Equal(t, "promquery:test_gauge:count", rr.Name)
		assert.Equal(t, `count(promquery_test_gauge)`, rr.Query)

		// The recording rule's output is queryable.
		v, err := c.WaitForValue(ctx, `promquery:test_gauge:count`, nil)
		require.NoError(t, err)
		assert.Equal(t, model.SampleValue(len(nastyValues)+1), v[0].Value)
	})

	t.Run("BadQuery", func(t *testing.T) {
		ctx := ctx30(t)
		_, _, err := c.Vector(ctx, `rate(promquery_test_gauge[5m]`, time.Time{})
		apiErr := assertBadQuery(t, eng, err)
		assert.Empty(t, apiErr.Body)
		assert.False(t, apiErr.Retryable())

		// WaitForValue gives up at once on a query that can never work.
		start := time.Now()
		_, err = c.WaitForValue(ctx, `sum(`, nil)
		require.ErrorAs(t, err, &apiErr)
		assert.Less(t, time.Since(start), 20*time.Second)
	})

	t.Run("Timeout", func(t *testing.T) {
		eng.skipOn(t, victoriaMetrics, "VictoriaMetrics refuses the costly query up front (422, too many points) and evaluates cheap ones before a 1 ms timeout can fire")
		ctx := ctx30(t)
		_, _, err := c.Vector(ctx, `sum(count_over_time(vector(1)[10m:1ms]))`, time.Time{}, promquery.WithTimeout(time.Millisecond))
		var apiErr *promquery.APIError
		require.ErrorAs(t, err, &apiErr)
		assert.Equal(t, http.StatusServiceUnavailable, apiErr.StatusCode)
		assert.Equal(t, promquery.ErrorTimeout, apiErr.Type)
		assert.True(t, apiErr.Retryable())
	})

	t.Run("Retries", func(t *testing.T) { testRetries(t, e) })

	t.Run("Limit", func(t *testing.T) {
		// Prometheus 2.42 and VictoriaMetrics ignore "limit" on queries;
		// the parameter must at least be accepted and not break the call.
		ctx := ctx30(t)
		v, _, err := c.Vector(ctx, `promquery_test_gauge`, time.Time{}, promquery.WithLimit(2), promquery.WithLookbackDelta(time.Minute))
		require.NoError(t, err)
		assert.NotEmpty(t, v)
	})

	t.Run("ResponseTooLarge", func(t *testing.T) {
		ctx := ctx30(t)
		small, err := promquery.New(e.url, promquery.Options{MaxResponseBytes: 200})
		require.NoError(t, err)
		_, _, err = small.Vector(ctx, `promquery_test_gauge`, time.Time{})
		require.ErrorIs(t, err, promquery.ErrResponseTooLarge)
		_, _, err = small.Targets(ctx, promquery.TargetsAny)
		require.ErrorIs(t, err, promquery.ErrResponseTooLarge)
		if eng.isPrometheus() {
			_, _, err = small.Rules(ctx)
			require.ErrorIs(t, err, promquery.ErrResponseTooLarge)
		}
		// Small answers still pass.
		_, _, err = small.Vector(ctx, `vector(1)`, time.Time{})
		require.NoError(t, err)
	})

	t.Run("Concurrent", func(t *testing.T) {
		// One Client shared by many goroutines (run with -race).
		ctx := ctx30(t)
		var wg sync.WaitGroup
		errs := make(chan error, 8*5)
		for g := range 8 {
			wg.Go(func() {
				for range 5 {
					var err error
					switch g % 4 {
					case 0:
						_, _, err = c.Vector(ctx, `promquery_test_gauge`, time.Time{})
					case 1:
						end := time.Now()
						_, _, err = c.Matrix(ctx, `promquery_test_gauge`, promquery.Range{Start: end.Add(-10 * time.Second), End: end, Step: time.Second})
					case 2:
						_, _, err = c.Targets(ctx, promquery.TargetsAny)
					case 3:
						_, err = c.QueryRaw(ctx, `vector(1)`, time.Time{})
					}
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
	})

	t.Run("Canceled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, _, err := c.Vector(ctx, `vector(1)`, time.Time{})
		require.ErrorIs(t, err, context.Canceled)
		_, err = c.QueryRaw(ctx, `vector(1)`, time.Time{})
		require.ErrorIs(t, err, context.Canceled)
		err = c.Ready(ctx)
		require.ErrorIs(t, err, context.Canceled)
	})
}

// assertBadQuery checks the error of a query that does not parse: 400
// bad_data from Prometheus, 422 with errorType "422" from VictoriaMetrics
// (which names its error types by status code). Either way
// [promquery.APIError.BadQuery] is true.
func assertBadQuery(t *testing.T, eng engine, err error) *promquery.APIError {
	t.Helper()
	var apiErr *promquery.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.True(t, apiErr.BadQuery(), "%v", apiErr)
	if eng.isPrometheus() {
		assert.Equal(t, http.StatusBadRequest, apiErr.StatusCode)
		assert.Equal(t, promquery.ErrorBadData, apiErr.Type)
		assert.Contains(t, apiErr.Message, "parse error")
	} else {
		assert.Equal(t, http.StatusUnprocessableEntity, apiErr.StatusCode)
		assert.Equal(t, promquery.ErrorType("422"), apiErr.Type)
		assert.Contains(t, apiErr.Message, "unexpected token")
	}
	return apiErr
}

// testRetries uses a counting proxy to show how often the real engine was
// asked: its 503 timeout answers are retried up to MaxAttempts, its
// answer to a query that does not parse is not retried at all.
func testRetries(t *testing.T, e *env) {
	var requests atomic.Int32
	srv := proxyTo(t, e.url, false, func(w http.ResponseWriter, r *http.Request) bool {
		requests.Add(1)
		return true
	})
	c := client(t, srv.URL, promquery.Options{Retry: promquery.RetryPolicy{
		MaxAttempts: 3, InitialBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
	}})
	ctx := ctx30(t)
	_, _, err := c.Vector(ctx, `sum(`, time.Time{})
	var apiErr *promquery.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.True(t, apiErr.BadQuery())
	assert.Equal(t, int32(1), requests.Load())

	if !e.eng.isPrometheus() {
		t.Skipf("%s: no query times out (see Timeout); checked that a bad query is not retried", e.eng.name)
	}
	requests.Store(0)
	_, _, err = c.Vector(ctx, `sum(count_over_time(vector(1)[10m:1ms]))`, time.Time{}, promquery.WithTimeout(time.Millisecond))
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, promquery.ErrorTimeout, apiErr.Type)
	assert.Equal(t, int32(3), requests.Load())
}

// TestInjection checks the selector builder against the real query engine:
// hostile values are matched exactly, and break-out attempts match nothing.
func TestInjection(t *testing.T) { eachEngine(t, testInjection) }

func testInjection(t *testing.T, eng engine) {
	e := startEnv(t, eng)
	c := e.client
	ctx := ctx30(t)
	count := func(t *testing.T, q string) int {
		t.Helper()
		v, _, err := c.Vector(ctx, q, time.Time{})
		require.NoError(t, err, "query %s", q)
		return len(v)
	}
	for _, nv := range nastyValues {
		t.Run(strconv.Quote(nv), func(t *testing.T) {
			sel := promquery.Select("promquery_test_gauge", promquery.Eq("tag", nv))
			v, _, err := c.Vector(ctx, sel.String(), time.Time{})
			require.NoError(t, err, "query %s", sel)
			require.Len(t, v, 1, "query %s", sel)
			assert.Equal(t, model.LabelValue(nv), v[0].Metric["tag"])

			re := promquery.Select("promquery_test_gauge", promquery.Re("tag", promquery.LiteralRegex(nv)))
			v, _, err = c.Vector(ctx, re.String(), time.Time{})
			require.NoError(t, err, "query %s", re)
			require.Len(t, v, 1, "query %s", re)
			assert.Equal(t, model.LabelValue(nv), v[0].Metric["tag"])

			assert.Equal(t, len(nastyValues), count(t, promquery.Select("promquery_test_gauge", promquery.Neq("tag", nv)).String()))
			assert.Equal(t, len(nastyValues), count(t, promquery.Select("promquery_test_gauge", promquery.Nre("tag", promquery.LiteralRegex(nv))).String()))
		})
	}
	t.Run("AnyOf", func(t *testing.T) {
		q := promquery.Select("promquery_test_gauge", promquery.Re("tag", promquery.AnyOf(nastyValues[0], nastyValues[5], "plain"))).String()
		assert.Equal(t, 3, count(t, q))
	})
	t.Run("random values", func(t *testing.T) {
		// Random strings over an alphabet of PromQL's special characters:
		// none exists as a value, so every selector must parse and match
		// nothing, whichever operator is used.
		const alphabet = "\"'`{}[](),=~!#|.*+?^$ \n\t\\orvectunlsé✓"
		runes := []rune(alphabet)
		rng := rand.New(rand.NewPCG(42, 7))
		for range 60 {
			var b strings.Builder
			for range 1 + rng.IntN(24) {
				b.WriteRune(runes[rng.IntN(len(runes))])
			}
			v := "zz" + b.String() // never equal to an exported value
			for _, m := range []promquery.Matcher{promquery.Eq("tag", v), promquery.Re("tag", promquery.LiteralRegex(v))} {
				q := promquery.Select("promquery_test_gauge", m).String()
				assert.Equal(t, 0, count(t, q), "query %s", q)
			}
			q := promquery.Select("promquery_test_gauge", promquery.Neq("tag", v)).String()
			assert.Equal(t, len(nastyValues)+1, count(t, q), "query %s", q)
		}
	})
	for _, inj := range injections {
		t.Run("inject "+strconv.Quote(inj), func(t *testing.T) {
			for _, m := range []promquery.Matcher{
				promquery.Eq("tag", inj),
				promquery.Re("tag", promquery.LiteralRegex(inj)),
			} {
				q := promquery.Select("promquery_test_gauge", m).String()
				assert.Equal(t, 0, count(t, q), "query %s", q)
				// Wrapped in a larger expression the shape holds too.
				assert.Equal(t, 0, count(t, "sum("+q+")*0 + "+q), "query %s", q)
			}
			// As a metric name it selects nothing either.
			assert.Equal(t, 0, count(t, promquery.Select(inj, promquery.Eq("job", "app")).String()))
		})
	}
}

// remoteReadDown is the body of the failing remote-read endpoint of
// TestWarnings; Prometheus quotes it in its warnings.
const remoteReadDown = "promquery-test: remote storage is down"

// TestWarnings checks that warnings of real Prometheus answers reach the
// caller. Prometheus 2.42 warns only when a remote-read endpoint fails, and
// the configuration testutil generates has no remote_read section. So the
// test writes its own configuration, with a remote_read endpoint (an
// httptest server) that always answers 503, and starts the real prometheus
// binary through a small POSIX sh wrapper that swaps the generated
// --config.file argument for it and passes every other argument through.
// The wrapper needs nothing but /bin/sh (present on every Debian system),
// lives in the test's temporary directory and is removed with it;
// prometheus replaces the wrapper's process (exec), so stopping the server
// stops prometheus itself.
func TestWarnings(t *testing.T) { eachEngine(t, testWarnings) }

func testWarnings(t *testing.T, eng engine) {
	eng.skipOn(t, victoriaMetrics, "VictoriaMetrics single has no remote read, the only source of warnings in these tests (its answers carry none)")
	bin := prometheusBinary(t, eng)
	var reads atomic.Int32
	remote := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reads.Add(1)
		http.Error(w, remoteReadDown, http.StatusServiceUnavailable)
	}))
	t.Cleanup(remote.Close)

	dir := t.TempDir()
	conf := filepath.Join(dir, "prometheus-with-remote-read.json")
	confJSON, err := json.Marshal(map[string]any{
		"global":      map[string]string{"scrape_interval": "1s", "evaluation_interval": "1s"},
		"remote_read": []any{map[string]any{"url": remote.URL + "/read", "read_recent": true}},
	})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(conf, confJSON, 0o644))
	wrapper := filepath.Join(dir, "prometheus-remote-read")
	script := `#!/bin/sh
# Written by promquery's TestWarnings: runs prometheus with the test's own
# configuration (it adds a failing remote_read endpoint) instead of the
# generated one; every other argument passes through unchanged.
CONF=` + shellQuote(conf) + `
BIN=` + shellQuote(bin) + `
n=$#
while [ "$n" -gt 0 ]; do
	a=$1
	shift
	n=$((n - 1))
	case $a in --config.file=*) a="--config.file=$CONF" ;; esac
	set -- "$@" "$a"
done
exec "$BIN" "$@"
`
	require.NoError(t, os.WriteFile(wrapper, []byte(script), 0o755))
	prom := promflowtest.Prometheus(t, promflowtest.PrometheusOptions{Binary: wrapper})
	c, err := promquery.New(prom.URL, promquery.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	ctx := ctx30(t)

	requireWarning := func(warnings []string) {
		t.Helper()
		require.NotEmpty(t, warnings, "expected a remote-read warning")
		assert.Contains(t, strings.Join(warnings, "\n"), remoteReadDown)
	}
	_, meta, err := c.Vector(ctx, `count(up)`, time.Time{})
	require.NoError(t, err, "the answer comes from local storage despite the warning")
	requireWarning(meta.Warnings)
	t.Logf("warnings: %q", meta.Warnings)
	assert.Positive(t, reads.Load(), "Prometheus consulted the remote-read endpoint")

	end := time.Now()
	_, meta, err = c.Matrix(ctx, `up`, promquery.Range{Start: end.Add(-time.Minute), End: end, Step: 10 * time.Second})
	require.NoError(t, err)
	requireWarning(meta.Warnings)

	meta, err = c.StreamMatrix(ctx, `up`, promquery.Range{Start: end.Add(-time.Minute), End: end, Step: 10 * time.Second},
		func(*model.SampleStream) error { return nil })
	require.NoError(t, err)
	requireWarning(meta.Warnings)

	r, meta, err := c.Query(ctx, `up`, time.Time{})
	require.NoError(t, err)
	assert.Equal(t, model.ValVector, r.Type)
	requireWarning(meta.Warnings)

	raw, err := c.QueryRaw(ctx, `up`, time.Time{})
	require.NoError(t, err)
	requireWarning(raw.Warnings)

	raw, err = c.QueryRangeRaw(ctx, `up`, promquery.Range{Start: end.Add(-time.Minute), End: end, Step: 10 * time.Second})
	require.NoError(t, err)
	requireWarning(raw.Warnings)

	_, meta, err = c.Series(ctx, []string{`up`}, time.Time{}, time.Time{})
	require.NoError(t, err)
	if eng.kind == prometheus3 {
		// Prometheus 3's /api/v1/series reads the warnings of its merged
		// series set before iterating it, and the remote read behind it
		// runs lazily during the iteration: the warning is lost upstream
		// (web/api/v1/api.go, series). The answer itself is right.
		assert.Empty(t, meta.Warnings, "Prometheus 3 started reporting series warnings: update docs/design.md")
		return
	}
	requireWarning(meta.Warnings)
}

// shellQuote quotes s as one POSIX sh word.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func sortMatrix(m model.Matrix) {
	sort.Slice(m, func(i, j int) bool { return m[i].Metric.Before(m[j].Metric) })
}
