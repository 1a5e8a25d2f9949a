package servicemetrics_test

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

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/broadcast"
	"github.com/promflow/promflow/internal/testutil"
	"github.com/promflow/promflow/mockexporter"
	"github.com/promflow/promflow/promflowtest"
	"github.com/promflow/promflow/promquery"
	"github.com/promflow/promflow/servicemetrics"
)

const testTimeout = 15 * time.Second

var quietLogger = slog.New(slog.DiscardHandler)

// startHub serves a hub with service-metrics' topics; it is shut down at
// cleanup.
func startHub(t *testing.T) (*broadcast.Hub, *httptest.Server) {
	t.Helper()
	h, err := broadcast.NewHub(broadcast.HubOptions{Topics: servicemetrics.Topics(), Logger: quietLogger})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		assert.NoError(t, h.Shutdown(ctx))
		srv.Close()
	})
	return h, srv
}

func dial(t *testing.T, srv *httptest.Server) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.CloseNow() })
	return c
}

func readMsg(t *testing.T, c *websocket.Conn) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var m map[string]any
	_, b, err := c.Read(ctx)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &m))
	return m
}

func send(t *testing.T, c *websocket.Conn, msg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	require.NoError(t, c.Write(ctx, websocket.MessageText, []byte(msg)))
}

// pollerMetric returns the value of one of the poller's counters.
func pollerMetric(t *testing.T, p *servicemetrics.Poller, name string) float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(p))
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// fakeQuerier answers from a function; for error paths only.
type fakeQuerier struct {
	instant func(ctx context.Context, q string, ts time.Time) (promquery.RawResult, error)
}

func (f *fakeQuerier) QueryRaw(ctx context.Context, q string, ts time.Time) (promquery.RawResult, error) {
	return f.instant(ctx, q, ts)
}

func (f *fakeQuerier) QueryRangeRaw(context.Context, string, promquery.Range) (promquery.RawResult, error) {
	return promquery.RawResult{}, errors.New("no range queries here")
}

// recorder counts what is published per topic.
type recorder struct {
	mu sync.Mutex
	n  map[string]int
}

func (r *recorder) PublishRaw(topic string, _ []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == nil {
		r.n = map[string]int{}
	}
	r.n[topic]++
	return nil
}

func (r *recorder) RetainRaw(string, []byte) error { return nil }

func (r *recorder) count(topic string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n[topic]
}

// publishers publishes to each in turn.
type publishers []servicemetrics.Publisher

func (ps publishers) RetainRaw(topic string, b []byte) error {
	var errs []error
	for _, p := range ps {
		errs = append(errs, p.RetainRaw(topic, b))
	}
	return errors.Join(errs...)
}

func (ps publishers) PublishRaw(topic string, b []byte) error {
	var errs []error
	for _, p := range ps {
		errs = append(errs, p.PublishRaw(topic, b))
	}
	return errors.Join(errs...)
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

	prom := promflowtest.Prometheus(t, promflowtest.PrometheusOptions{
		ScrapeConfigs: []promflowtest.ScrapeConfig{{JobName: "mock", Targets: []string{target.Listener.Addr().String()}}},
	})
	// Stopped before the hub's cleanup checks for leaked goroutines (the
	// restarted process's are newer than that check's baseline). A closure:
	// Restart replaces the process.
	defer func() { _ = prom.Stop() }()
	client, err := promquery.New(prom.URL, promquery.Options{})
	require.NoError(t, err)
	defer client.Close()

	h, srv := startHub(t)
	p, err := servicemetrics.NewPoller(client, h, servicemetrics.PollerOptions{
		Interval: 200 * time.Millisecond,
		Timeout:  2 * time.Second,
		Instant:  []servicemetrics.Query{{"memory", `mock_high_memory_usage_bytes{service="mock-service"}`}, {"up", `up{job="mock"}`}},
		Range:    []servicemetrics.RangeQuery{{Name: "memory_5m", Query: "mock_high_memory_usage_bytes", Window: 5 * time.Minute, Step: time.Second}},
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
	errorsBefore := pollerMetric(t, p, "service_metrics_errors_total")
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
	assert.Positive(t, pollerMetric(t, p, "service_metrics_collected_total"))

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
	h, srv := startHub(t)
	require.NoError(t, h.PublishRaw(servicemetrics.TopicInstantMetrics, []byte(`{"type":"instant_metrics","n":0}`)))
	stuck := make(chan struct{})
	var once sync.Once
	q := &fakeQuerier{instant: func(ctx context.Context, _ string, _ time.Time) (promquery.RawResult, error) {
		once.Do(func() { close(stuck) })
		<-ctx.Done() // never answers
		return promquery.RawResult{}, ctx.Err()
	}}
	rec := &recorder{}
	p, err := servicemetrics.NewPoller(q, publishers{h, rec}, servicemetrics.PollerOptions{Interval: time.Hour, Timeout: time.Hour,
		Instant: []servicemetrics.Query{{"a", "a"}, {"b", "b"}}, Logger: quietLogger})
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
	require.NoError(t, h.Publish(servicemetrics.TopicIncident, map[string]any{"type": "incident", "n": 1}))
	assert.Equal(t, float64(1), readMsg(t, c)["n"])
	send(t, c, `{"type":"ping"}`)
	assert.Equal(t, "ack", readMsg(t, c)["type"])

	cancel()
	stopped = true
	require.ErrorIs(t, <-done, context.Canceled)
	assert.Zero(t, pollerMetric(t, p, "service_metrics_errors_total"), "an abandoned poll is not a query failure")
	assert.Zero(t, pollerMetric(t, p, "service_metrics_collected_total"))
	assert.Zero(t, rec.count(servicemetrics.TopicInstantMetrics), "nothing half-done is published")
}
