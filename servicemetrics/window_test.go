package servicemetrics

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/promquery"
)

// scripted answers each range query from the series given for its end
// time: label value -> value, one point at the end (and, for a full
// query, also one point per step before it, value "h").
type scripted struct {
	mu     sync.Mutex
	points map[int64]map[string]string
}

func (s *scripted) QueryRaw(context.Context, string, time.Time) (promquery.RawResult, error) {
	return promquery.RawResult{Data: json.RawMessage(`{"resultType":"vector","result":[]}`)}, nil
}

func (s *scripted) QueryRangeRaw(_ context.Context, _ string, r promquery.Range) (promquery.RawResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	end := r.End.Unix()
	var res []string
	names := make([]string, 0, len(s.points[end]))
	for n := range s.points[end] {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		var vals []string
		for t := r.Start.Unix(); t < end; t += int64(r.Step / time.Second) {
			vals = append(vals, fmt.Sprintf(`[%d,"h"]`, t))
		}
		vals = append(vals, fmt.Sprintf(`[%d,%q]`, end, s.points[end][n]))
		res = append(res, fmt.Sprintf(`{"metric":{"s":%q},"values":[%s]}`, n, strings.Join(vals, ",")))
	}
	return promquery.RawResult{Data: json.RawMessage(`{"resultType":"matrix","result":[` + strings.Join(res, ",") + `]}`)}, nil
}

// clientView is what a client rebuilds: series label -> its points.
type clientView map[string][]string

// rebuild applies range_metrics and then range_update messages as a
// client does, and checks the sequence has no gap.
type rebuild struct {
	t      *testing.T
	seq    float64
	window float64
	byID   map[float64]string
	view   clientView
}

func (r *rebuild) full(msg map[string]any) {
	q := msg["data"].(map[string]any)["q"].(map[string]any)
	r.seq, r.window = msg["seq"].(float64), q["window_seconds"].(float64)
	r.byID, r.view = map[float64]string{}, clientView{}
	for _, s := range q["result"].([]any) {
		s := s.(map[string]any)
		name := s["metric"].(map[string]any)["s"].(string)
		r.byID[s["id"].(float64)] = name
		for _, v := range s["values"].([]any) {
			v := v.([]any)
			r.view[name] = append(r.view[name], fmt.Sprintf("%v=%v", v[0], v[1]))
		}
	}
}

func (r *rebuild) update(msg map[string]any) {
	require.Equal(r.t, r.seq+1, msg["seq"], "a gap in the sequence")
	r.seq = msg["seq"].(float64)
	q := msg["data"].(map[string]any)["q"].(map[string]any)
	t := q["t"].(float64)
	for _, a := range asList(q["added"]) {
		a := a.(map[string]any)
		r.byID[a["id"].(float64)] = a["metric"].(map[string]any)["s"].(string)
	}
	for _, p := range asList(q["points"]) {
		p := p.([]any)
		name := r.byID[p[0].(float64)]
		r.view[name] = append(r.view[name], fmt.Sprintf("%v=%v", t, p[1]))
	}
	for _, id := range asList(q["removed"]) {
		delete(r.view, r.byID[id.(float64)])
		delete(r.byID, id.(float64))
	}
	for name, pts := range r.view { // the client trims to the window too
		kept := pts[:0]
		for _, p := range pts {
			var pt float64
			fmt.Sscanf(p, "%g=", &pt)
			if pt >= t-r.window {
				kept = append(kept, p)
			}
		}
		r.view[name] = kept
	}
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	return m
}

// TestRangeUpdates drives the poller with a scripted Prometheus and a
// fixed clock: the first poll publishes the full window (range_metrics);
// each later one publishes only the new point of each series and the
// series that appeared or vanished (range_update), numbered without gaps;
// the retained range_metrics always equals what a client rebuilds from
// the updates; every FullEvery polls the full window goes out again.
func TestRangeUpdates(t *testing.T) {
	const t0 = 1_000_000
	q := &scripted{points: map[int64]map[string]string{
		t0:      {"a": "1", "b": "9"},
		t0 + 1:  {"a": "2", "c": "5"},
		t0 + 2:  {"a": "3", "c": "6"},
		t0 + 20: {"a": "4"}, // b and c fall out of the 10 s window
		t0 + 21: {"a": "5"},
	}}
	rec := &recorder{}
	p, err := NewPoller(q, rec, PollerOptions{
		Range:     []RangeQuery{{Name: "q", Query: "x", Window: 10 * time.Second, Step: time.Second}},
		FullEvery: 4,
		Logger:    quietLogger,
	})
	require.NoError(t, err)
	now := time.Unix(t0, 0)
	p.now = func() time.Time { return now }

	require.NoError(t, p.Poll(context.Background()))
	require.Equal(t, 1, rec.count(TopicRangeMetrics), "the first poll sends the full window")
	r := &rebuild{t: t}
	r.full(rec.last(t, TopicRangeMetrics))
	assert.Len(t, r.view["a"], 11, "10 s of history at 1 s steps, and the point at t0")

	for i, at := range []int64{t0 + 1, t0 + 2, t0 + 20} {
		now = time.Unix(at, 0)
		require.NoError(t, p.Poll(context.Background()))
		upd := rec.last(t, TopicRangeUpdate)
		r.update(upd)
		require.Equal(t, i+1, rec.count(TopicRangeUpdate))
		// What a client rebuilt equals the full window the hub retains.
		want := &rebuild{t: t}
		want.full(decode(t, rec.retained[TopicRangeMetrics]))
		assert.Equal(t, want.view, r.view, "after the update at %d", at)
		assert.Equal(t, want.seq, r.seq)
	}
	last := rec.last(t, TopicRangeUpdate)["data"].(map[string]any)["q"].(map[string]any)
	assert.ElementsMatch(t, []any{float64(1), float64(2)}, last["removed"], "b and c vanished")
	assert.Equal(t, []any{[]any{float64(0), "4"}}, last["points"], "only the new point of a")
	assert.Nil(t, last["added"])
	raw := rec.msgs[TopicRangeUpdate][len(rec.msgs[TopicRangeUpdate])-1]
	assert.Less(t, len(raw), 200, "an update is small: %s", raw)

	now = time.Unix(t0+21, 0)
	require.NoError(t, p.Poll(context.Background()))
	require.Equal(t, 2, rec.count(TopicRangeMetrics), "the fifth poll (FullEvery 4) sends the full window again")
	assert.Equal(t, 3, rec.count(TopicRangeUpdate), "and no update")
}

// TestRangeErrorKeepsWindow: a failed range query is published as its
// error in range_update and leaves the window as it was.
func TestRangeErrorKeepsWindow(t *testing.T) {
	const t0 = 2_000_000
	q := &scripted{points: map[int64]map[string]string{t0: {"a": "1"}, t0 + 2: {"a": "3"}}}
	rec := &recorder{}
	p, err := NewPoller(q, rec, PollerOptions{
		Range:  []RangeQuery{{Name: "q", Query: "x", Window: 10 * time.Second, Step: time.Second}},
		Logger: quietLogger,
	})
	require.NoError(t, err)
	now := time.Unix(t0, 0)
	p.now = func() time.Time { return now }
	require.NoError(t, p.Poll(context.Background()))
	before := &rebuild{t: t}
	before.full(rec.last(t, TopicRangeMetrics)) // published in full: the first poll

	now = time.Unix(t0+1, 0)
	p.q = &failing{q}
	require.NoError(t, p.Poll(context.Background()))
	upd := rec.last(t, TopicRangeUpdate)["data"].(map[string]any)["q"].(map[string]any)
	assert.Contains(t, upd["error"], "boom")
	after := &rebuild{t: t}
	after.full(decode(t, rec.retained[TopicRangeMetrics]))
	assert.Equal(t, before.view, after.view)
}

type failing struct{ *scripted }

func (f *failing) QueryRangeRaw(context.Context, string, promquery.Range) (promquery.RawResult, error) {
	return promquery.RawResult{}, fmt.Errorf("boom")
}

// TestInstantDoesNotWaitForRange: instant_metrics is published as soon as
// the instant queries return, while a range query is still running, and
// is timestamped with the evaluation time given to Prometheus.
func TestInstantDoesNotWaitForRange(t *testing.T) {
	release := make(chan struct{})
	var evalTime time.Time
	q := &fakeQuerier{
		instant: func(_ context.Context, _ string, ts time.Time) (promquery.RawResult, error) {
			evalTime = ts
			return promquery.RawResult{Data: json.RawMessage(vectorData)}, nil
		},
		ranged: func(ctx context.Context, _ string, _ promquery.Range) (promquery.RawResult, error) {
			select {
			case <-release:
			case <-ctx.Done():
			}
			return promquery.RawResult{Data: json.RawMessage(`{"resultType":"matrix","result":[]}`)}, nil
		},
	}
	rec := &recorder{}
	p, err := NewPoller(q, rec, PollerOptions{
		Instant: []Query{{"up", "up"}},
		Range:   []RangeQuery{{Name: "r", Query: "up", Window: time.Minute}},
		Timeout: time.Minute,
		Logger:  quietLogger,
	})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- p.Poll(context.Background()) }()
	deadline := time.Now().Add(testTimeout)
	for rec.count(TopicInstantMetrics) == 0 {
		require.True(t, time.Now().Before(deadline), "instant_metrics waited for the range query")
		time.Sleep(5 * time.Millisecond)
	}
	assert.Zero(t, rec.count(TopicRangeMetrics))
	close(release)
	require.NoError(t, <-done)
	assert.Equal(t, 1, rec.count(TopicRangeMetrics))
	assert.Equal(t, evalTime.UTC().Format("2006-01-02T15:04:05.000Z"), rec.last(t, TopicInstantMetrics)["timestamp"])
}
