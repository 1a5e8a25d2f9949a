package promquery_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/promquery"
)

// The tests in this file use httptest fakes for what a real Prometheus
// cannot easily be made to do: answers of a broken proxy, truncated or
// malformed bodies, an error status in a 200, infos (Prometheus 2.42 sends
// none), 429 and 503 with Retry-After, the same 503 timeout again and again
// (to see the backoff), slow bodies.

const okVector = `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"b"},"value":[1700000000.5,"42"]}]}}`

func fake(t *testing.T, h http.HandlerFunc) *promquery.Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return client(t, srv.URL, promquery.Options{})
}

func client(t *testing.T, url string, opts promquery.Options) *promquery.Client {
	t.Helper()
	c, err := promquery.New(url, opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestNewRejectsBadAddress(t *testing.T) {
	for _, addr := range []string{"", "localhost:9090", "ftp://x", "http://"} {
		_, err := promquery.New(addr, promquery.Options{})
		assert.ErrorIs(t, err, promquery.ErrInvalidArgument, "address %q", addr)
	}
	_, err := promquery.New("http://[::1", promquery.Options{})
	assert.Error(t, err)
	c, err := promquery.New("http://127.0.0.1:1/prefix/", promquery.Options{})
	require.NoError(t, err)
	require.NoError(t, c.Close())
	require.NoError(t, c.Close())
}

func TestHTMLFromProxy(t *testing.T) {
	c := fake(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = io.WriteString(w, "<html><body><h1>502 Bad Gateway</h1></body></html>")
	})
	ctx := context.Background()
	check := func(err error) {
		t.Helper()
		var apiErr *promquery.APIError
		require.ErrorAs(t, err, &apiErr)
		assert.Equal(t, http.StatusBadGateway, apiErr.StatusCode)
		assert.Empty(t, apiErr.Type)
		assert.Equal(t, "Bad Gateway", apiErr.Message)
		assert.Contains(t, string(apiErr.Body), "<h1>502 Bad Gateway</h1>")
		assert.Contains(t, apiErr.Error(), "502")
		assert.False(t, apiErr.Retryable())
	}
	_, _, err := c.Vector(ctx, "up", time.Time{})
	check(err)
	_, err = c.QueryRaw(ctx, "up", time.Time{})
	check(err)
	_, _, err = c.Targets(ctx, promquery.TargetsAny)
	check(err)
	check(c.Healthy(ctx))
}

func TestErrorStatusIn200(t *testing.T) {
	c := fake(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"status":"error","errorType":"execution","error":"boom","warnings":["w1"]}`)
	})
	var apiErr *promquery.APIError
	_, _, err := c.Vector(context.Background(), "up", time.Time{})
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, http.StatusOK, apiErr.StatusCode)
	assert.Equal(t, promquery.ErrorExecution, apiErr.Type)
	assert.Equal(t, "boom", apiErr.Message)
	assert.Equal(t, []string{"w1"}, apiErr.Warnings)
	_, _, err = c.Alerts(context.Background())
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, "boom", apiErr.Message)
}

func TestWarningsAndInfosDecoded(t *testing.T) {
	// Prometheus 2.42 has no "infos" (they came with 2.50), so their
	// decoding is checked with a fake; warnings are also tested for real.
	c := fake(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"status":"success","data":{"resultType":"matrix","result":[]},"warnings":["w1","w2"],"infos":["PromQL info: i1"]}`)
	})
	end := time.Now()
	m, meta, err := c.Matrix(context.Background(), "up", promquery.Range{Start: end.Add(-time.Minute), End: end, Step: time.Second})
	require.NoError(t, err)
	assert.Empty(t, m)
	assert.Equal(t, []string{"w1", "w2"}, meta.Warnings)
	assert.Equal(t, []string{"PromQL info: i1"}, meta.Infos)
	raw, err := c.QueryRaw(context.Background(), "up", time.Time{})
	require.NoError(t, err)
	assert.Equal(t, []string{"w1", "w2"}, raw.Warnings)
	assert.Equal(t, []string{"PromQL info: i1"}, raw.Infos)
	assert.JSONEq(t, `{"resultType":"matrix","result":[]}`, string(raw.Data))
}

func TestTruncatedBody(t *testing.T) {
	full := `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"b"},"value":[1700000000.5,"42"]},{"metric":{"a":"c"}`
	for name, declareFull := range map[string]bool{"clean EOF": false, "short Content-Length": true} {
		t.Run(name, func(t *testing.T) {
			c := fake(t, func(w http.ResponseWriter, r *http.Request) {
				if declareFull {
					w.Header().Set("Content-Length", "100000")
				}
				_, _ = io.WriteString(w, full)
			})
			ctx := context.Background()
			_, _, err := c.Vector(ctx, "up", time.Time{})
			require.Error(t, err)
			assert.True(t, errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, promquery.ErrBadResponse), "%v", err)
			_, err = c.QueryRaw(ctx, "up", time.Time{})
			require.Error(t, err)
			_, _, err = c.Rules(ctx)
			require.Error(t, err)
		})
	}
}

func TestRetryAfter(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = io.WriteString(w, "slow down")
			return
		}
		_, _ = io.WriteString(w, okVector)
	}))
	t.Cleanup(srv.Close)

	// Without a retry policy the 429 comes back at once.
	c := client(t, srv.URL, promquery.Options{})
	_, _, err := c.Vector(context.Background(), "up", time.Time{})
	var apiErr *promquery.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, http.StatusTooManyRequests, apiErr.StatusCode)
	assert.True(t, apiErr.Retryable())
	assert.Equal(t, time.Second, apiErr.RetryAfter)
	assert.Equal(t, int32(1), calls.Load())

	calls.Store(0)
	c = client(t, srv.URL, promquery.Options{Retry: promquery.RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Millisecond}})
	start := time.Now()
	v, _, err := c.Vector(context.Background(), "up", time.Time{})
	require.NoError(t, err)
	require.Len(t, v, 1)
	assert.Equal(t, int32(2), calls.Load())
	// Retry-After (1 s) was honoured rather than the 1 ms backoff.
	assert.GreaterOrEqual(t, time.Since(start), 900*time.Millisecond)
}

func TestRetryStopsWithContext(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Retry-After", "30")
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	c := client(t, srv.URL, promquery.Options{Retry: promquery.RetryPolicy{MaxAttempts: 5, MaxBackoff: time.Minute}})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err := c.Vector(ctx, "up", time.Time{})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	var apiErr *promquery.APIError
	require.ErrorAs(t, err, &apiErr, "the last answer stays visible")
	assert.Equal(t, http.StatusServiceUnavailable, apiErr.StatusCode)
	assert.Equal(t, int32(1), calls.Load(), "no second attempt before Retry-After")
	assert.Less(t, time.Since(start), 20*time.Second)
}

func TestRetryAfterLongerThanMaxBackoff(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Retry-After", "30")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	t.Cleanup(srv.Close)
	c := client(t, srv.URL, promquery.Options{Retry: promquery.RetryPolicy{MaxAttempts: 5, MaxBackoff: time.Second}})
	start := time.Now()
	_, _, err := c.Vector(context.Background(), "up", time.Time{})
	var apiErr *promquery.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, http.StatusTooManyRequests, apiErr.StatusCode)
	assert.Equal(t, 30*time.Second, apiErr.RetryAfter)
	assert.Equal(t, int32(1), calls.Load(), "no attempt sooner than the server asked")
	assert.Less(t, time.Since(start), 20*time.Second, "gave up rather than waiting 30 s")
}

func TestRetryBackoffCapped(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, `{"status":"error","errorType":"timeout","error":"query timed out"}`)
	}))
	t.Cleanup(srv.Close)
	var logs bytes.Buffer
	c := client(t, srv.URL, promquery.Options{
		Retry:  promquery.RetryPolicy{MaxAttempts: 5, InitialBackoff: 5 * time.Millisecond, MaxBackoff: 12 * time.Millisecond},
		Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	_, err := c.QueryRaw(context.Background(), "up", time.Time{})
	var apiErr *promquery.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, promquery.ErrorTimeout, apiErr.Type)
	assert.Equal(t, "query timed out", apiErr.Message)
	assert.Equal(t, int32(5), calls.Load())
	// The waits double from InitialBackoff and stop at MaxBackoff.
	var waits []time.Duration
	dec := json.NewDecoder(&logs)
	for dec.More() {
		var line struct {
			Msg  string        `json:"msg"`
			Wait time.Duration `json:"wait"`
		}
		require.NoError(t, dec.Decode(&line))
		if line.Msg == "promquery: retrying" {
			waits = append(waits, line.Wait)
		}
	}
	assert.Equal(t, []time.Duration{5 * time.Millisecond, 10 * time.Millisecond, 12 * time.Millisecond, 12 * time.Millisecond}, waits)
}

func TestSlowBodyCanceled(t *testing.T) {
	flushed := make(chan struct{})
	c := fake(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"1"]`)
		w.(http.Flusher).Flush()
		close(flushed)
		<-r.Context().Done() // the rest never comes
	})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-flushed
		cancel()
	}()
	end := time.Now()
	start := time.Now()
	_, err := c.StreamMatrix(ctx, "up", promquery.Range{Start: end.Add(-time.Minute), End: end, Step: time.Second}, func(*model.SampleStream) error { return nil })
	require.ErrorIs(t, err, context.Canceled)
	assert.Less(t, time.Since(start), 20*time.Second)
}

func TestSlowBodyDeadline(t *testing.T) {
	c := fake(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"status":"success","data":{"resultType":"vector","result":[`)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, _, err := c.Vector(ctx, "up", time.Time{})
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestNonJSONErrorBodyKept(t *testing.T) {
	c := fake(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, strings.Repeat("x", 100<<10))
	})
	var apiErr *promquery.APIError
	err := c.Ready(context.Background())
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, http.StatusServiceUnavailable, apiErr.StatusCode)
	assert.Len(t, apiErr.Body, 64<<10, "the body is kept up to 64 KiB")
	assert.Less(t, len(apiErr.Error()), 1000, "the message stays short")
}

func TestQueryRawErrors(t *testing.T) {
	for body, check := range map[string]func(error) bool{
		`{"status":"error","errorType":"execution","error":"boom"}`: func(err error) bool {
			var apiErr *promquery.APIError
			return errors.As(err, &apiErr) && apiErr.Type == promquery.ErrorExecution && apiErr.Message == "boom"
		},
		`{"status":"success"}`:                    func(err error) bool { return errors.Is(err, promquery.ErrBadResponse) },
		`{"status":"success","data":{}} trailing`: func(err error) bool { return errors.Is(err, promquery.ErrBadResponse) },
		`{"status":"success","data":{"result":[]`: func(err error) bool { return errors.Is(err, promquery.ErrBadResponse) },
		`<html>`: func(err error) bool { return errors.Is(err, promquery.ErrBadResponse) },
	} {
		c := fake(t, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, body) })
		_, err := c.QueryRaw(context.Background(), "up", time.Time{})
		assert.True(t, check(err), "body %s: %v", body, err)
		_, err = c.QueryRangeRaw(context.Background(), "up", promquery.Range{Start: time.Unix(0, 0), End: time.Unix(60, 0), Step: time.Second})
		assert.True(t, check(err), "body %s: %v", body, err)
	}
	c := fake(t, func(w http.ResponseWriter, r *http.Request) { t.Error("no request expected") })
	_, err := c.QueryRangeRaw(context.Background(), "up", promquery.Range{Start: time.Unix(60, 0), End: time.Unix(0, 0), Step: time.Second})
	require.ErrorIs(t, err, promquery.ErrInvalidArgument)
}

// TestVictoriaMetricsClusterAnswers decodes answer shapes of the
// VictoriaMetrics versions not installed here (cluster's vmselect, 1.90
// and later): "isPartial" beside data, their own "stats" outside data.
// Debian's single-node 1.79 sends neither; the integration tests cover it.
func TestVictoriaMetricsClusterAnswers(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/api/v1/query":
			io.WriteString(w, `{"status":"success","isPartial":true,"data":{"resultType":"vector","result":[{"metric":{"__name__":"up","job":"a"},"value":[1700000000.5,"1"]}]},"stats":{"seriesFetched":"1","executionTimeMsec":2}}`)
		case "/api/v1/query_range":
			io.WriteString(w, `{"status":"success","isPartial":false,"data":{"resultType":"matrix","result":[{"metric":{"job":"a"},"values":[[1700000000,"1"],[1700000001,"2"]]}]},"stats":{"seriesFetched":"1","executionTimeMsec":0}}`)
		case "/api/v1/series":
			io.WriteString(w, `{"status":"success","isPartial":true,"data":[{"__name__":"up","job":"a"}]}`)
		default:
			w.WriteHeader(http.StatusUnprocessableEntity)
			io.WriteString(w, `{"status":"error","errorType":"422","error":"cannot parse query"}`)
		}
	}))
	defer srv.Close()
	c, err := promquery.New(srv.URL, promquery.Options{})
	require.NoError(t, err)
	ctx := context.Background()

	v, meta, err := c.Vector(ctx, `up`, time.Time{})
	require.NoError(t, err)
	require.Len(t, v, 1)
	assert.Equal(t, model.Time(1700000000500), v[0].Timestamp)
	assert.True(t, meta.Partial)
	assert.Empty(t, meta.Stats, "VictoriaMetrics' statistics outside data are not Prometheus' stats")

	m, meta, err := c.Matrix(ctx, `up`, promquery.Range{Start: time.Unix(1700000000, 0), End: time.Unix(1700000001, 0), Step: time.Second})
	require.NoError(t, err)
	require.Len(t, m, 1)
	assert.Len(t, m[0].Values, 2)
	assert.False(t, meta.Partial)

	raw, err := c.QueryRaw(ctx, `up`, time.Time{})
	require.NoError(t, err)
	assert.True(t, raw.Partial)
	assert.Contains(t, string(raw.Data), `"resultType":"vector"`)

	series, meta, err := c.Series(ctx, []string{`up`}, time.Time{}, time.Time{})
	require.NoError(t, err)
	require.Len(t, series, 1)
	assert.True(t, meta.Partial)

	_, _, err = c.LabelValues(ctx, "job", nil, time.Time{}, time.Time{})
	var apiErr *promquery.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, promquery.ErrorType("422"), apiErr.Type)
	assert.True(t, apiErr.BadQuery())
}

func TestAPIErrorBadQuery(t *testing.T) {
	for _, tc := range []struct {
		err  promquery.APIError
		want bool
	}{
		{promquery.APIError{StatusCode: 400, Type: promquery.ErrorBadData}, true},
		{promquery.APIError{StatusCode: 400}, true},
		{promquery.APIError{StatusCode: 422, Type: "422"}, true},
		{promquery.APIError{StatusCode: 422, Type: promquery.ErrorExecution}, false},
		{promquery.APIError{StatusCode: 503, Type: promquery.ErrorTimeout}, false},
		{promquery.APIError{StatusCode: 500, Type: promquery.ErrorInternal}, false},
		{promquery.APIError{StatusCode: 200, Type: promquery.ErrorBadData}, true},
	} {
		assert.Equal(t, tc.want, tc.err.BadQuery(), "%+v", tc.err)
	}
}
