package servicemetrics

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promtestutil "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/broadcast"
	"github.com/promflow/promflow/internal/testutil"
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
	mu       sync.Mutex
	msgs     map[string][][]byte
	retained map[string][]byte
	err      error
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

func (r *recorder) RetainRaw(topic string, b []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.retained == nil {
		r.retained = map[string][]byte{}
	}
	r.retained[topic] = b
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

const testTimeout = 15 * time.Second

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
	assert.Equal(t, map[string]any{"resultType": "matrix", "window_seconds": float64(3600), "result": []any{}}, rm["data"].(map[string]any)["up_1h"])
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
	rec.err = broadcast.ErrClosed
	require.ErrorIs(t, p.Poll(context.Background()), broadcast.ErrClosed)
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
