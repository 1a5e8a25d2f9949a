package promquery

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/common/config"
)

// DefaultMaxResponseBytes is the response size cap used when
// Options.MaxResponseBytes is zero: large enough for any sane query, small
// enough that a runaway answer cannot exhaust memory.
const DefaultMaxResponseBytes = 1 << 30

// Options configures a [Client]. The zero value works: no auth, the default
// transport settings of prometheus/common/config, no retries, POST with GET
// fallback, and a response cap of [DefaultMaxResponseBytes].
type Options struct {
	// HTTPConfig carries auth (bearer token, basic auth, OAuth2), TLS
	// (CA, client certificate, files re-read on change) and proxy settings in
	// the format Prometheus itself uses. It is ignored when HTTPClient is set.
	// Its zero value, like any Go zero value and unlike a YAML file Prometheus
	// reads, does not follow redirects (a 3xx answer is an [*APIError]) and
	// speaks HTTP/1.1; start from config.DefaultHTTPClientConfig to get
	// Prometheus' defaults.
	HTTPConfig config.HTTPClientConfig

	// HTTPClient, when set, is used as is (HTTPConfig is then ignored).
	HTTPClient *http.Client

	// Headers are added to every request (for example a tenant header for a
	// multi-tenant proxy). They never replace Content-Type.
	Headers http.Header

	// MaxResponseBytes caps the size of a response body. Reading stops with
	// [ErrResponseTooLarge] as soon as the cap is passed. Zero means
	// [DefaultMaxResponseBytes]; a negative value means no cap.
	MaxResponseBytes int64

	// Retry enables retries of requests answered with 429, 503 or a
	// Prometheus "timeout" error. The zero value disables retries.
	Retry RetryPolicy

	// DisablePOST sends queries with GET only. By default query-like
	// requests are sent as POST forms (no URL length limit) and fall back to
	// GET when the server answers 405, 501 or 403: for good after 405 or
	// 501, for that request only after 403.
	DisablePOST bool

	// PollInterval is how often [Client.WaitTargetUp] and
	// [Client.WaitForValue] ask again; zero means 100 ms.
	PollInterval time.Duration

	// Logger receives debug logs about retries and GET fallback. Nil means
	// no logs.
	Logger *slog.Logger
}

// RetryPolicy sets how requests that failed with a retryable answer (HTTP
// 429, 503, or errorType "timeout") are retried. Waits grow exponentially
// from InitialBackoff and are capped at MaxBackoff. A Retry-After header is
// honoured: the next attempt waits exactly as long as the server asked, and
// if it asked for more than MaxBackoff the call gives up at once with the
// answer's [*APIError] (whose RetryAfter says when to come back). Retrying
// stops when the context ends.
type RetryPolicy struct {
	// MaxAttempts is the total number of attempts, the first included.
	// 0 or 1 means no retry.
	MaxAttempts int
	// InitialBackoff is the first wait; zero means 100 ms.
	InitialBackoff time.Duration
	// MaxBackoff caps each wait, and is the longest Retry-After the client
	// waits for; zero means 10 s.
	MaxBackoff time.Duration
}

// Client talks to one Prometheus server. It is safe for concurrent use by
// many goroutines; create one per server and reuse it.
type Client struct {
	base         *url.URL
	hc           *http.Client
	headers      http.Header
	max          int64
	retry        RetryPolicy
	log          *slog.Logger
	pollInterval time.Duration
	ownHC        bool        // hc was built by New
	noPOST       atomic.Bool // set for good after a POST got 405 or 501
}

// New returns a client for the Prometheus server at address, e.g.
// "http://localhost:9090" or "https://prom.example.com/prefix". It does not
// contact the server; use [Client.Ready] for that.
func New(address string, opts Options) (*Client, error) {
	u, err := url.Parse(address)
	if err != nil {
		return nil, fmt.Errorf("%w: address %q: %w", ErrInvalidArgument, address, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%w: address %q: scheme must be http or https", ErrInvalidArgument, address)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%w: address %q: missing host", ErrInvalidArgument, address)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawQuery, u.Fragment = "", ""
	hc := opts.HTTPClient
	if hc == nil {
		if err := opts.HTTPConfig.Validate(); err != nil {
			return nil, fmt.Errorf("promquery: http config: %w", err)
		}
		hc, err = config.NewClientFromConfig(opts.HTTPConfig, "promquery", config.WithUserAgent("promflow-promquery"))
		if err != nil {
			return nil, fmt.Errorf("promquery: http client: %w", err)
		}
	}
	c := &Client{
		base:    u,
		hc:      hc,
		headers: opts.Headers.Clone(),
		max:     opts.MaxResponseBytes,
		retry:   opts.Retry,
		log:     opts.Logger,
		ownHC:   opts.HTTPClient == nil,
	}
	if c.max == 0 {
		c.max = DefaultMaxResponseBytes
	}
	if c.retry.InitialBackoff <= 0 {
		c.retry.InitialBackoff = 100 * time.Millisecond
	}
	if c.retry.MaxBackoff <= 0 {
		c.retry.MaxBackoff = 10 * time.Second
	}
	c.pollInterval = opts.PollInterval
	if c.pollInterval <= 0 {
		c.pollInterval = 100 * time.Millisecond
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.noPOST.Store(opts.DisablePOST)
	return c, nil
}

// Close releases the idle connections of the HTTP client that New built
// from Options.HTTPConfig (a caller's Options.HTTPClient is left alone). The
// client owns no goroutines, so nothing else needs stopping; calls after
// Close still work but open new connections. Close is idempotent.
func (c *Client) Close() error {
	if c.ownHC {
		c.hc.CloseIdleConnections()
	}
	return nil
}

// Range is the time range and resolution of a range query.
type Range struct {
	Start, End time.Time
	Step       time.Duration
}

// RawResult is the "data" member of a query answer kept verbatim, e.g.
// {"resultType":"vector","result":[...]}, with the answer's warnings and
// infos, and whether it is partial (see [Meta].Partial).
type RawResult struct {
	Data     json.RawMessage
	Warnings []string
	Infos    []string
	Partial  bool
}

// QueryRaw runs an instant query (ts zero means "now" on the server) and
// returns the answer's data undecoded, for callers that forward it as JSON.
func (c *Client) QueryRaw(ctx context.Context, query string, ts time.Time) (RawResult, error) {
	return c.queryRaw(ctx, "/api/v1/query", instantParams(query, ts, nil))
}

// QueryRangeRaw runs a range query and returns the answer's data undecoded.
func (c *Client) QueryRangeRaw(ctx context.Context, query string, r Range) (RawResult, error) {
	v, err := rangeParams(query, r, nil)
	if err != nil {
		return RawResult{}, err
	}
	return c.queryRaw(ctx, "/api/v1/query_range", v)
}

func (c *Client) queryRaw(ctx context.Context, path string, v url.Values) (RawResult, error) {
	var data json.RawMessage
	meta, err := c.getJSON(ctx, path, v, true, &data)
	if err != nil {
		return RawResult{}, err
	}
	if len(data) == 0 || string(data) == "null" {
		return RawResult{}, fmt.Errorf("promquery: %s: %w: no data", path, ErrBadResponse)
	}
	return RawResult{Data: data, Warnings: meta.Warnings, Infos: meta.Infos, Partial: meta.Partial}, nil
}

// queryParams are the per-call settings of [QueryOption].
type queryParams struct {
	timeout       time.Duration
	limit         int
	lookbackDelta time.Duration
	stats         string
}

// QueryOption changes one setting of a query call; see [WithTimeout],
// [WithLimit], [WithLookbackDelta] and [WithStats].
type QueryOption struct{ apply func(*queryParams) }

// WithTimeout sets the server-side evaluation timeout ("timeout"
// parameter); it can only shorten the server's --query.timeout.
func WithTimeout(d time.Duration) QueryOption {
	return QueryOption{func(p *queryParams) { p.timeout = d }}
}

// WithLimit caps the number of returned series or values ("limit"
// parameter). Servers older than the parameter ignore it.
func WithLimit(n int) QueryOption { return QueryOption{func(p *queryParams) { p.limit = n }} }

// WithLookbackDelta overrides the server's lookback delta for this query
// ("lookback_delta" parameter, Prometheus 2.43+).
func WithLookbackDelta(d time.Duration) QueryOption {
	return QueryOption{func(p *queryParams) { p.lookbackDelta = d }}
}

// WithStats asks for query statistics ("stats" parameter, e.g. "all"); they
// are returned in [Meta].Stats.
func WithStats(level string) QueryOption {
	return QueryOption{func(p *queryParams) { p.stats = level }}
}

func applyOptions(v url.Values, opts []QueryOption) {
	var p queryParams
	for _, o := range opts {
		if o.apply != nil {
			o.apply(&p)
		}
	}
	if p.timeout > 0 {
		v.Set("timeout", formatDuration(p.timeout))
	}
	if p.limit > 0 {
		v.Set("limit", strconv.Itoa(p.limit))
	}
	if p.lookbackDelta > 0 {
		v.Set("lookback_delta", formatDuration(p.lookbackDelta))
	}
	if p.stats != "" {
		v.Set("stats", p.stats)
	}
}

func instantParams(query string, ts time.Time, opts []QueryOption) url.Values {
	v := url.Values{"query": {query}}
	if !ts.IsZero() {
		v.Set("time", formatTime(ts))
	}
	applyOptions(v, opts)
	return v
}

func rangeParams(query string, r Range, opts []QueryOption) (url.Values, error) {
	if r.Step <= 0 {
		return nil, fmt.Errorf("%w: range step must be positive, got %v", ErrInvalidArgument, r.Step)
	}
	if r.Start.IsZero() || r.End.IsZero() {
		return nil, fmt.Errorf("%w: range start and end must be set", ErrInvalidArgument)
	}
	if r.End.Before(r.Start) {
		return nil, fmt.Errorf("%w: range end %v is before start %v", ErrInvalidArgument, r.End, r.Start)
	}
	v := url.Values{
		"query": {query},
		"start": {formatTime(r.Start)},
		"end":   {formatTime(r.End)},
		"step":  {formatDuration(r.Step)},
	}
	applyOptions(v, opts)
	return v, nil
}

// formatTime renders t as Unix seconds with millisecond precision, the form
// Prometheus parses without loss.
func formatTime(t time.Time) string {
	ms := t.UnixMilli()
	neg := ms < 0
	if neg {
		ms = -ms
	}
	s := strconv.FormatInt(ms/1000, 10) + "." + fmt.Sprintf("%03d", ms%1000)
	if neg {
		s = "-" + s
	}
	return s
}

// formatDuration renders d as float seconds, which every Prometheus
// version accepts for step, timeout and lookback_delta.
func formatDuration(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
}
