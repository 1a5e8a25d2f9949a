package broadcast

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promtestutil "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/internal/testutil"
	"github.com/promflow/promflow/mockexporter"
	"github.com/promflow/promflow/promquery"
)

// fakeQuerier answers from a function; for error paths only (the real
// Prometheus is used in TestPollerAgainstPrometheus).
type fakeQuerier struct {
	instant func(ctx context.Context, q string, ts time.Time) (promquery.RawResult, error)
	ranged  func(ctx context.Context, q string, r promquery.Range) (promquery.RawResult, error)
}

func (f *fakeQuerier) QueryRaw(ctx context.Context, q string, ts time.Time) (promquery.RawResult, error) {
	return f.instant(ctx, q, ts)
}

func (f *fakeQuerier) QueryRangeRaw(ctx context.Context, q string, r promquery.Range) (promquery.RawResult, error) {
	return f.ranged(ctx, q, r)
}

// recorder is a Publisher that keeps what it is given.
type recorder struct {
	mu   sync.Mutex
	msgs map[string][][]byte
	err  error
}

func (r *recorder) PublishRaw(topic string, b []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.msgs == nil {
		r.msgs = map[string][][]byte{}
	}
	r.msgs[topic] = append(r.msgs[topic], b)
	return r.err
}

func (r *recorder) count(topic string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs[topic])
}

func (r *recorder) last(t *testing.T, topic string) map[string]any {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	require.NotEmpty(t, r.msgs[topic])
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.msgs[topic][len(r.msgs[topic])-1], &m))
	return m
}

var quietLogger = slog.New(slog.DiscardHandler)

const vectorData = `{"resultType":"vector","result":[{"metric":{"__name__":"up"},"value":[1700000000,"1"]}]}`

func TestPollerMessageShapeAndErrors(t *testing.T) {
	var gotRange promquery.Range
	var mu sync.Mutex
	q := &fakeQuerier{
		instant: func(ctx context.Context, query string, ts time.Time) (promquery.RawResult, error) {
			switch query {
			case "up":
				return promquery.RawResult{Data: json.RawMessage(vectorData), Warnings: []string{"w"}}, nil
			case "slow":
				<-ctx.Done() // a Prometheus that never answers
				return promquery.RawResult{}, fmt.Errorf("query slow: %w", ctx.Err())
			case "garbage":
				return promquery.RawResult{Data: json.RawMessage(`{"resultType":`)}, nil
			default:
				return promquery.RawResult{}, &promquery.APIError{StatusCode: 400, Type: "bad_data", Message: "parse error"}
			}
		},
		ranged: func(ctx context.Context, query string, r promquery.Range) (promquery.RawResult, error) {
			mu.Lock()
			gotRange = r
			mu.Unlock()
			return promquery.RawResult{Data: json.RawMessage(`{"resultType":"matrix","result":[]}`)}, nil
		},
	}
	rec := &recorder{}
	p, err := NewPoller(q, rec, PollerOptions{
		Timeout: 200 * time.Millisecond,
		Instant: []Query{{"up", "up"}, {"slow", "slow"}, {"bad", "rate(("}, {"garbage", "garbage"}},
		Range:   []RangeQuery{{Name: "up_1h", Query: "up", Window: time.Hour}},
		Source:  "test",
		Logger:  quietLogger,
	})
	require.NoError(t, err)

	start := time.Now()
	require.NoError(t, p.Poll(context.Background()))
	assert.Less(t, time.Since(start), 10*time.Second, "the slow query is bounded by Timeout")

	m := rec.last(t, TopicInstantMetrics)
	assert.Equal(t, "instant_metrics", m["type"])
	_, err = time.Parse(time.RFC3339, m["timestamp"].(string))
	require.NoError(t, err)
	data := m["data"].(map[string]any)
	require.Len(t, data, 4)
	var want any
	require.NoError(t, json.Unmarshal([]byte(vectorData), &want))
	assert.Equal(t, want, data["up"], "the Prometheus API's data, verbatim")
	assert.Contains(t, data["slow"].(map[string]any)["error"], "deadline exceeded")
	assert.Contains(t, data["bad"].(map[string]any)["error"], "parse error")
	assert.Contains(t, data["garbage"].(map[string]any)["error"], "invalid JSON")

	// Names are in configured order in the raw bytes.
	raw := string(rec.msgs[TopicInstantMetrics][0])
	assert.Less(t, strings.Index(raw, `"up"`), strings.Index(raw, `"slow"`))
	assert.True(t, strings.HasPrefix(raw, `{"type":"instant_metrics","timestamp":"`), raw)

	rm := rec.last(t, TopicRangeMetrics)
	assert.Equal(t, "range_metrics", rm["type"])
	assert.Equal(t, map[string]any{"resultType": "matrix", "result": []any{}}, rm["data"].(map[string]any)["up_1h"])
	mu.Lock()
	assert.Equal(t, time.Hour, gotRange.End.Sub(gotRange.Start))
	assert.Equal(t, time.Minute, gotRange.Step)
	mu.Unlock()

	assert.Equal(t, float64(2), promtestutil.ToFloat64(p.collected))
	assert.Equal(t, float64(3), promtestutil.ToFloat64(p.errors))
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(p))
	n, err := promtestutil.GatherAndCount(reg, "service_metrics_poll_duration_seconds")
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	require.NoError(t, promtestutil.GatherAndCompare(reg, strings.NewReader(`
# HELP service_metrics_errors_total Queries of the poller that failed.
# TYPE service_metrics_errors_total counter
service_metrics_errors_total{source="test"} 3
`), "service_metrics_errors_total"))

	// A failing publisher is reported by Poll.
	rec.err = ErrClosed
	require.ErrorIs(t, p.Poll(context.Background()), ErrClosed)
}

func TestNewPollerValidates(t *testing.T) {
	q := &fakeQuerier{}
	for name, opts := range map[string]PollerOptions{
		"no name":        {Instant: []Query{{"", "up"}}},
		"no query":       {Instant: []Query{{"up", ""}}},
		"duplicate":      {Instant: []Query{{"a", "up"}, {"a", "down"}}},
		"range no query": {Range: []RangeQuery{{Name: "a"}}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := NewPoller(q, &recorder{}, opts)
			assert.ErrorIs(t, err, ErrInvalidQuery)
		})
	}
	_, err := NewPoller(nil, &recorder{}, PollerOptions{})
	assert.Error(t, err)
	p, err := NewPoller(q, &recorder{}, PollerOptions{})
	require.NoError(t, err)
	assert.Equal(t, DefaultInstantQueries(), p.opts.Instant)
	assert.Equal(t, DefaultPollInterval, p.opts.Interval)
}

func TestPollerRunNeverOverlaps(t *testing.T) {
	var mu sync.Mutex
	inFlight, maxInFlight, calls := 0, 0, 0
	q := &fakeQuerier{instant: func(ctx context.Context, _ string, _ time.Time) (promquery.RawResult, error) {
		mu.Lock()
		inFlight++
		calls++
		maxInFlight = max(maxInFlight, inFlight)
		mu.Unlock()
		select { // longer than the interval
		case <-time.After(30 * time.Millisecond):
		case <-ctx.Done():
		}
		mu.Lock()
		inFlight--
		mu.Unlock()
		return promquery.RawResult{Data: json.RawMessage(vectorData)}, nil
	}}
	rec := &recorder{}
	p, err := NewPoller(q, rec, PollerOptions{Interval: 5 * time.Millisecond, Timeout: time.Second,
		Instant: []Query{{"a", "a"}}, Logger: quietLogger})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	testutil.Eventually(t, testTimeout, func() error {
		if n := rec.count(TopicInstantMetrics); n < 3 {
			return fmt.Errorf("%d polls", n)
		}
		return nil
	})
	require.ErrorIs(t, p.Run(ctx), ErrRunning)
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, 1, maxInFlight, "a poll never overlaps the next")
	assert.Zero(t, inFlight, "Run returns once its queries are done")
}

// TestPollerAgainstPrometheus: a real Prometheus scrapes the mockexporter;
// the poller publishes the simulated value through the hub to a WebSocket
// client; when Prometheus stops, errors are published and the poller goes
// on; when it is back, values come again.
func TestPollerAgainstPrometheus(t *testing.T) {
	mock := mockexporter.New(mockexporter.Options{Logger: quietLogger, DisableRuntimeCollectors: true})
	target := httptest.NewServer(mock.Handler())
	defer target.Close()
	simulate := func(v string) {
		t.Helper()
		resp, err := http.Post(target.URL+"/simulate/memory-usage/"+v, "text/plain", nil)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	simulate("1234")

	prom := testutil.Prometheus(t, testutil.PrometheusOptions{
		ScrapeConfigs: []testutil.ScrapeConfig{{JobName: "mock", Targets: []string{target.Listener.Addr().String()}}},
	})
	// Stopped before the hub's cleanup checks for leaked goroutines (the
	// restarted process's are newer than that check's baseline). A closure:
	// Restart replaces the process.
	defer func() { _ = prom.Stop() }()
	client, err := promquery.New(prom.URL, promquery.Options{})
	require.NoError(t, err)
	defer client.Close()

	h, srv := startHub(t, HubOptions{})
	p, err := NewPoller(client, h, PollerOptions{
		Interval: 200 * time.Millisecond,
		Timeout:  2 * time.Second,
		Instant:  []Query{{"memory", `mock_high_memory_usage_bytes{service="mock-service"}`}, {"up", `up{job="mock"}`}},
		Range:    []RangeQuery{{Name: "memory_5m", Query: "mock_high_memory_usage_bytes", Window: 5 * time.Minute, Step: time.Second}},
		Logger:   quietLogger,
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- p.Run(ctx) }()
	defer func() { cancel(); <-runDone }()

	ws := dial(t, srv)
	// next returns the next instant_metrics "data".
	next := func() map[string]any {
		for {
			m := readMsg(t, ws)
			if m["type"] == "instant_metrics" {
				return m["data"].(map[string]any)
			}
		}
	}
	value := func(d map[string]any, name string) (string, error) {
		r, ok := d[name].(map[string]any)
		if !ok {
			return "", fmt.Errorf("%s missing", name)
		}
		if e, ok := r["error"]; ok {
			return "", fmt.Errorf("%s: error %v", name, e)
		}
		if r["resultType"] != "vector" {
			return "", fmt.Errorf("%s: resultType %v", name, r["resultType"])
		}
		res := r["result"].([]any)
		if len(res) == 0 {
			return "", fmt.Errorf("%s: empty result", name)
		}
		return res[0].(map[string]any)["value"].([]any)[1].(string), nil
	}
	waitValue := func(want string) {
		t.Helper()
		testutil.Eventually(t, testTimeout, func() error {
			v, err := value(next(), "memory")
			if err != nil {
				return err
			}
			if v != want {
				return fmt.Errorf("memory = %s, want %s", v, want)
			}
			return nil
		})
	}
	waitValue("1234")
	simulate("87.5")
	waitValue("87.5")

	// Prometheus stops: each query's error is published, the poller goes on.
	require.NoError(t, prom.Stop())
	testutil.Eventually(t, testTimeout, func() error {
		d := next()
		for _, name := range []string{"memory", "up"} {
			r := d[name].(map[string]any)
			if r["error"] == nil {
				return fmt.Errorf("%s: no error yet: %v", name, r)
			}
		}
		return nil
	})
	errorsBefore := promtestutil.ToFloat64(p.errors)
	assert.Positive(t, errorsBefore)
	select {
	case err := <-runDone:
		t.Fatalf("poller stopped: %v", err)
	default:
	}

	// Back again: values again.
	prom.Restart()
	simulate("42")
	waitValue("42")
	assert.Positive(t, promtestutil.ToFloat64(p.collected))

	// The range query publishes a matrix.
	testutil.Eventually(t, testTimeout, func() error {
		m := readMsg(t, ws)
		if m["type"] != "range_metrics" {
			return errors.New("not a range_metrics message")
		}
		r := m["data"].(map[string]any)["memory_5m"].(map[string]any)
		if r["resultType"] != "matrix" || len(r["result"].([]any)) == 0 {
			return fmt.Errorf("memory_5m: %v", r)
		}
		return nil
	})
	assert.Positive(t, h.Clients())
}

// TestSlowPrometheusNeverBlocksHub: while a poll waits on a Prometheus that
// does not answer, the hub goes on serving: a client connects and gets the
// latest snapshot, events and acks flow. Stopping the poller mid-poll
// counts no query error and publishes nothing half-done.
func TestSlowPrometheusNeverBlocksHub(t *testing.T) {
	h, srv := startHub(t, HubOptions{})
	require.NoError(t, h.PublishRaw(TopicInstantMetrics, []byte(`{"type":"instant_metrics","n":0}`)))
	stuck := make(chan struct{})
	var once sync.Once
	q := &fakeQuerier{instant: func(ctx context.Context, _ string, _ time.Time) (promquery.RawResult, error) {
		once.Do(func() { close(stuck) })
		<-ctx.Done() // never answers
		return promquery.RawResult{}, ctx.Err()
	}}
	rec := &recorder{}
	p, err := NewPoller(q, publishers{h, rec}, PollerOptions{Interval: time.Hour, Timeout: time.Hour,
		Instant: []Query{{"a", "a"}, {"b", "b"}}, Logger: quietLogger})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	stopped := false
	defer func() {
		if !stopped {
			cancel()
			<-done
		}
	}()
	select {
	case <-stuck:
	case <-time.After(testTimeout):
		t.Fatal("the poll never started")
	}

	c := dial(t, srv)
	assert.Equal(t, "connection", readMsg(t, c)["type"])
	assert.Equal(t, float64(0), readMsg(t, c)["n"], "the latest snapshot, at once")
	require.NoError(t, h.Publish(TopicIncident, map[string]any{"type": "incident", "n": 1}))
	assert.Equal(t, float64(1), readMsg(t, c)["n"])
	send(t, c, `{"type":"ping"}`)
	assert.Equal(t, "ack", readMsg(t, c)["type"])

	cancel()
	stopped = true
	require.ErrorIs(t, <-done, context.Canceled)
	assert.Zero(t, promtestutil.ToFloat64(p.errors), "an abandoned poll is not a query failure")
	assert.Zero(t, promtestutil.ToFloat64(p.collected))
	assert.Zero(t, rec.count(TopicInstantMetrics), "nothing half-done is published")
}

// publishers publishes to each in turn.
type publishers []Publisher

func (ps publishers) PublishRaw(topic string, b []byte) error {
	var errs []error
	for _, p := range ps {
		errs = append(errs, p.PublishRaw(topic, b))
	}
	return errors.Join(errs...)
}
