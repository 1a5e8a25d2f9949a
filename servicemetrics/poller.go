package servicemetrics

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/promflow/promflow/broadcast"
	"github.com/promflow/promflow/promquery"
)

// Querier runs PromQL queries and returns the Prometheus API's "data"
// member verbatim. *promquery.Client satisfies it.
type Querier interface {
	QueryRaw(ctx context.Context, query string, ts time.Time) (promquery.RawResult, error)
	QueryRangeRaw(ctx context.Context, query string, r promquery.Range) (promquery.RawResult, error)
}

var _ Querier = (*promquery.Client)(nil)

// Publisher receives the poller's encoded messages. *broadcast.Hub
// satisfies it.
type Publisher interface {
	// PublishRaw sends msg to the topic's clients.
	PublishRaw(topic string, msg []byte) error
	// RetainRaw makes msg the snapshot topic's latest message, for
	// clients that connect or resync, without sending it now.
	RetainRaw(topic string, msg []byte) error
}

var _ Publisher = (*broadcast.Hub)(nil)

// Query is a named instant query.
type Query struct {
	Name  string // key of the result in the message's "data"
	Query string // PromQL
}

// RangeQuery is a named range query over the Window before each poll.
type RangeQuery struct {
	Name   string
	Query  string
	Window time.Duration // default 1h
	Step   time.Duration // default Window/60
}

// DefaultInstantQueries are the instant queries of the original
// service-metrics, each named as its query.
func DefaultInstantQueries() []Query {
	return []Query{
		{Name: "prometheus_tsdb_head_series", Query: "prometheus_tsdb_head_series"},
		{Name: "prometheus_engine_queries", Query: "prometheus_engine_queries"},
		{Name: "http_requests_total", Query: "http_requests_total"},
	}
}

// Poller defaults.
const (
	DefaultPollInterval = 10 * time.Second
	DefaultRangeWindow  = time.Hour
	DefaultSource       = "prometheus"
	DefaultFullEvery    = 60
)

// PollerOptions configures a [Poller]. The zero value works: the default
// instant queries every 10 s, published on instant_metrics.
type PollerOptions struct {
	// Interval between polls. Default DefaultPollInterval.
	Interval time.Duration
	// Timeout bounds each query. Default: Interval.
	Timeout time.Duration
	// Instant queries, published together as one message on InstantTopic.
	// When both Instant and Range are nil, DefaultInstantQueries() is used.
	Instant []Query
	// Range queries, published together as one message on RangeTopic.
	Range []RangeQuery
	// InstantTopic, RangeTopic and UpdateTopic are the topics, and the
	// messages' "type". Defaults TopicInstantMetrics, TopicRangeMetrics
	// and TopicRangeUpdate; all three must be snapshot topics.
	InstantTopic string
	RangeTopic   string
	UpdateTopic  string
	// FullEvery is how many polls apart the full range windows
	// (range_metrics) go to every client, for clients of the original
	// service that know no range_update; between those, each poll sends
	// range_update. Default DefaultFullEvery; negative: only when a window
	// is first filled (clients still get it on connect and on resync).
	FullEvery int
	// Source is the value of the const label source on the poller's
	// metrics. Default DefaultSource.
	Source string
	// Logger receives poll errors. Default slog.Default().
	Logger *slog.Logger
}

// Errors returned by the poller.
var (
	// ErrRunning is returned by Run when the poller is already running.
	ErrRunning = errors.New("servicemetrics: poller is already running")
	// ErrInvalidQuery is returned by NewPoller for a query without a name
	// or PromQL, or with a duplicate name.
	ErrInvalidQuery = errors.New("servicemetrics: invalid query")
)

// Poller runs named PromQL queries on an interval and publishes their
// results. Queries of a poll run concurrently, each with its own timeout;
// a poll never overlaps the next. A failed query is published as
// {"error":"..."} under its name and the poller goes on.
type Poller struct {
	q    Querier
	pub  Publisher
	opts PollerOptions
	log  *slog.Logger

	collected prometheus.Counter
	errors    prometheus.Counter
	duration  prometheus.Histogram

	pollMu  sync.Mutex // one poll at a time; guards the fields below
	windows []*window  // one per range query
	now     func() time.Time
	seq     uint64 // of the last range change published
	polls   int    // range polls so far

	runMu   sync.Mutex
	running bool
}

// NewPoller returns a poller that queries q and publishes to pub. It starts
// nothing: call Run. It fails with ErrInvalidQuery on empty or duplicate
// names or empty queries.
func NewPoller(q Querier, pub Publisher, opts PollerOptions) (*Poller, error) {
	if q == nil || pub == nil {
		return nil, errors.New("servicemetrics: NewPoller needs a Querier and a Publisher")
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultPollInterval
	}
	if opts.Timeout <= 0 {
		opts.Timeout = opts.Interval
	}
	if opts.Instant == nil && opts.Range == nil {
		opts.Instant = DefaultInstantQueries()
	}
	if opts.InstantTopic == "" {
		opts.InstantTopic = TopicInstantMetrics
	}
	if opts.RangeTopic == "" {
		opts.RangeTopic = TopicRangeMetrics
	}
	if opts.UpdateTopic == "" {
		opts.UpdateTopic = TopicRangeUpdate
	}
	if opts.FullEvery == 0 {
		opts.FullEvery = DefaultFullEvery
	}
	if opts.Source == "" {
		opts.Source = DefaultSource
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	opts.Instant = append([]Query(nil), opts.Instant...)
	opts.Range = append([]RangeQuery(nil), opts.Range...)
	seen := map[string]bool{}
	for _, iq := range opts.Instant {
		if err := checkQuery("instant", iq.Name, iq.Query, seen); err != nil {
			return nil, err
		}
	}
	seen = map[string]bool{}
	for i, rq := range opts.Range {
		if err := checkQuery("range", rq.Name, rq.Query, seen); err != nil {
			return nil, err
		}
		if rq.Window <= 0 {
			opts.Range[i].Window = DefaultRangeWindow
		}
		if rq.Step <= 0 {
			opts.Range[i].Step = max(opts.Range[i].Window/60, time.Second)
		}
	}
	labels := prometheus.Labels{"source": opts.Source}
	windows := make([]*window, len(opts.Range))
	for i, rq := range opts.Range {
		windows[i] = newWindow(rq)
	}
	return &Poller{
		q: q, pub: pub, opts: opts, log: opts.Logger, windows: windows, now: time.Now,
		collected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "service_metrics_collected_total", ConstLabels: labels,
			Help: "Query results collected by the poller.",
		}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "service_metrics_errors_total", ConstLabels: labels,
			Help: "Queries of the poller that failed.",
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "service_metrics_poll_duration_seconds", ConstLabels: labels,
			Help:    "Duration of one poll (all its queries).",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}),
	}, nil
}

func checkQuery(kind, name, query string, seen map[string]bool) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: %s query %q has no name", ErrInvalidQuery, kind, query)
	case query == "":
		return fmt.Errorf("%w: %s query %q is empty", ErrInvalidQuery, kind, name)
	case seen[name]:
		return fmt.Errorf("%w: duplicate %s query name %q", ErrInvalidQuery, kind, name)
	}
	seen[name] = true
	return nil
}

// Run polls at once and then every Interval until ctx ends, and returns
// ctx's error once no query of it is running. A poll that takes longer than
// the interval delays the next one; polls never overlap.
func (p *Poller) Run(ctx context.Context) error {
	p.runMu.Lock()
	if p.running {
		p.runMu.Unlock()
		return ErrRunning
	}
	p.running = true
	p.runMu.Unlock()
	defer func() {
		p.runMu.Lock()
		p.running = false
		p.runMu.Unlock()
	}()

	t := time.NewTicker(p.opts.Interval)
	defer t.Stop()
	for {
		if err := p.Poll(ctx); err != nil && ctx.Err() == nil {
			p.log.Warn("servicemetrics: publish poll results", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Poll runs every query once and publishes the results: instant_metrics
// as soon as the instant queries return, and what the range queries
// changed (see the package doc). Query failures are part of the published
// messages, not of the returned error, which only reports a failure to
// publish.
func (p *Poller) Poll(ctx context.Context) error {
	p.pollMu.Lock()
	defer p.pollMu.Unlock()
	start := p.now()
	defer func() { p.duration.Observe(time.Since(start).Seconds()) }()

	var instErr, rangeErr error
	var wg sync.WaitGroup
	if len(p.opts.Instant) > 0 {
		wg.Go(func() { instErr = p.pollInstant(ctx, start) })
	}
	if len(p.windows) > 0 {
		wg.Go(func() { rangeErr = p.pollRange(ctx, start) })
	}
	wg.Wait()
	if ctx.Err() != nil {
		// Cancelled mid-poll: nothing half-done was published, and no
		// failure is counted (the caller stopped the queries).
		return ctx.Err()
	}
	return errors.Join(instErr, rangeErr)
}

// pollInstant runs the instant queries at ts and publishes their results,
// timestamped with ts, the evaluation time.
func (p *Poller) pollInstant(ctx context.Context, ts time.Time) error {
	results := make([]json.RawMessage, len(p.opts.Instant))
	var wg sync.WaitGroup
	for i, q := range p.opts.Instant {
		wg.Go(func() {
			qctx, cancel := context.WithTimeout(ctx, p.opts.Timeout)
			defer cancel()
			res, err := p.q.QueryRaw(qctx, q.Query, ts)
			if ctx.Err() != nil {
				return // the poll is abandoned: not a query failure
			}
			results[i] = p.result(q.Name, res, err)
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	names := make([]string, len(p.opts.Instant))
	for i, q := range p.opts.Instant {
		names[i] = q.Name
	}
	return p.pub.PublishRaw(p.opts.InstantTopic, encodeResults(p.opts.InstantTopic, isoTime(ts), names, results))
}

// pollRange brings every window up to ts: a window not primed yet gets its
// whole history, the others the point at ts. Then it publishes either the
// full windows to every client (when a window was just primed, and every
// FullEvery polls) or only the change (range_update), and retains the full
// windows for clients that connect or resync.
func (p *Poller) pollRange(ctx context.Context, ts time.Time) error {
	answers := make([]promquery.RawResult, len(p.windows))
	errs := make([]error, len(p.windows))
	var wg sync.WaitGroup
	for i, w := range p.windows {
		wg.Go(func() {
			qctx, cancel := context.WithTimeout(ctx, p.opts.Timeout)
			defer cancel()
			r := promquery.Range{Start: ts, End: ts, Step: w.q.Step}
			if !w.primed {
				r.Start = ts.Add(-w.q.Window)
			}
			answers[i], errs[i] = p.q.QueryRangeRaw(qctx, w.q.Query, r)
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	full := p.polls%p.opts.FullEvery == 0 && p.opts.FullEvery > 0
	p.polls++
	changes := make([]change, len(p.windows))
	for i, w := range p.windows {
		wasPrimed := w.primed
		changes[i] = w.apply(ts, p.result(w.q.Name, answers[i], errs[i]), errs[i])
		full = full || (!wasPrimed && w.primed)
	}
	p.seq++
	snapshot := p.encodeWindows(ts)
	if full {
		return p.pub.PublishRaw(p.opts.RangeTopic, snapshot)
	}
	if err := p.pub.RetainRaw(p.opts.RangeTopic, snapshot); err != nil {
		return err
	}
	return p.pub.PublishRaw(p.opts.UpdateTopic, p.encodeChanges(ts, changes))
}

// encodeWindows builds range_metrics: every window in full, with the
// sequence number of the last change folded in.
func (p *Poller) encodeWindows(ts time.Time) []byte {
	var b bytes.Buffer
	p.header(&b, p.opts.RangeTopic, ts)
	for i, w := range p.windows {
		if i > 0 {
			b.WriteByte(',')
		}
		writeJSONString(&b, w.q.Name)
		b.WriteByte(':')
		w.encodeFull(&b)
	}
	b.WriteString(`}}`)
	return b.Bytes()
}

// encodeChanges builds range_update from one poll's changes.
func (p *Poller) encodeChanges(ts time.Time, changes []change) []byte {
	var b bytes.Buffer
	p.header(&b, p.opts.UpdateTopic, ts)
	t := json.RawMessage(strconv.FormatFloat(float64(ts.UnixMilli())/1000, 'f', -1, 64))
	for i, w := range p.windows {
		if i > 0 {
			b.WriteByte(',')
		}
		writeJSONString(&b, w.q.Name)
		b.WriteByte(':')
		encodeChange(&b, changes[i], t)
	}
	b.WriteString(`}}`)
	return b.Bytes()
}

// header starts {"type":typ,"timestamp":ts,"seq":n,"data":{.
func (p *Poller) header(b *bytes.Buffer, typ string, ts time.Time) {
	b.WriteString(`{"type":`)
	writeJSONString(b, typ)
	b.WriteString(`,"timestamp":`)
	writeJSONString(b, isoTime(ts))
	b.WriteString(`,"seq":`)
	b.WriteString(strconv.FormatUint(p.seq, 10))
	b.WriteString(`,"data":{`)
}

// isoTime formats t as JavaScript's toISOString does.
func isoTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }

// result turns one query's outcome into its JSON under "data".
func (p *Poller) result(name string, res promquery.RawResult, err error) json.RawMessage {
	if err == nil && !json.Valid(res.Data) {
		err = errors.New("invalid JSON data in the Prometheus answer")
	}
	if err != nil {
		p.errors.Inc()
		p.log.Warn("servicemetrics: query failed", "source", p.opts.Source, "name", name, "err", err)
		b, _ := json.Marshal(struct {
			Error string `json:"error"`
		}{err.Error()})
		return b
	}
	if len(res.Warnings) > 0 {
		p.log.Debug("servicemetrics: query warnings", "name", name, "warnings", res.Warnings)
	}
	p.collected.Inc()
	return res.Data
}

// encodeResults builds {"type":typ,"timestamp":ts,"data":{name:result,...}}
// with the names in their configured order.
func encodeResults(typ, ts string, names []string, results []json.RawMessage) []byte {
	var b bytes.Buffer
	b.WriteString(`{"type":`)
	writeJSONString(&b, typ)
	b.WriteString(`,"timestamp":`)
	writeJSONString(&b, ts)
	b.WriteString(`,"data":{`)
	for i, name := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		writeJSONString(&b, name)
		b.WriteByte(':')
		b.Write(results[i])
	}
	b.WriteString(`}}`)
	return b.Bytes()
}

func writeJSONString(b *bytes.Buffer, s string) {
	q, _ := json.Marshal(s) // a string always encodes
	b.Write(q)
}

// Describe implements prometheus.Collector.
func (p *Poller) Describe(ch chan<- *prometheus.Desc) {
	p.collected.Describe(ch)
	p.errors.Describe(ch)
	p.duration.Describe(ch)
}

// Collect implements prometheus.Collector.
func (p *Poller) Collect(ch chan<- prometheus.Metric) {
	p.collected.Collect(ch)
	p.errors.Collect(ch)
	p.duration.Collect(ch)
}

var _ prometheus.Collector = (*Poller)(nil)
