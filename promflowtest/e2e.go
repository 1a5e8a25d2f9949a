package promflowtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/promflow/promflow/promquery"
)

// SeedStage numbers the stages of the seed report's end-to-end test.
type SeedStage int

// The stages, in the order [RunSeedChecks] runs them. StageAlertLoop is
// not in the seed report: it runs only with [SeedTargets.AlertLoop].
const (
	StageMockMetrics SeedStage = 1 + iota
	StagePrometheus
	StageServiceMetrics
	StageWebSocket
	StageFlow
	StageAlertLoop
)

// String returns the stage's short name, as in the seed report's "Tests
// réussis par stage" list.
func (s SeedStage) String() string {
	switch s {
	case StageMockMetrics:
		return "Mock-Metrics"
	case StagePrometheus:
		return "Prometheus"
	case StageServiceMetrics:
		return "Service-Metrics"
	case StageWebSocket:
		return "WebSocket"
	case StageFlow:
		return "E2E Validation"
	case StageAlertLoop:
		return "Alerte → Incident"
	}
	return fmt.Sprintf("Stage %d", int(s))
}

// SeedTargets says where the services under test are and how long to wait
// for them. Only the three URLs are required; they may be promflow's
// pipeline ([RunningPipeline]'s URLs) or the original Node services.
type SeedTargets struct {
	MockURL       string // mock-metrics, e.g. http://localhost:8082
	PrometheusURL string // Prometheus, e.g. http://localhost:9090
	ServiceURL    string // service-metrics, e.g. http://localhost:8005
	// QueryURL is where the Prometheus stage's three queries go, the
	// server service-metrics queries: default PrometheusURL. With a
	// remote-write backend ([RunningPipeline].QueryURL, VictoriaMetrics)
	// the values are checked there, while health and target status stay
	// Prometheus', which scrapes.
	QueryURL string
	// WebSocketURL defaults to ServiceURL with a ws (wss) scheme and path
	// "/", where the original's clients connect.
	WebSocketURL string
	// MockJob is the Prometheus job that scrapes mock-metrics; default
	// "mock-metrics".
	MockJob string

	// AlertLoop adds the alert → incident → WebSocket stage: memory is
	// simulated above the HighMemoryUsage threshold (90), an incident for
	// AlertService must open (REST and a WebSocket "incident" message), and
	// resolve once memory is back to the seed's value. It needs Prometheus
	// alert rules and an Alertmanager whose webhook reaches service-metrics.
	AlertLoop bool
	// AlertService is the service of the HighMemoryUsage alert; default
	// "mock-service".
	AlertService string

	// CheckTimeout bounds each check, including the waits for a scrape or a
	// broadcast to show the simulated values; default 30s.
	CheckTimeout time.Duration
	// AlertTimeout bounds each check of the alert loop; default 60s.
	AlertTimeout time.Duration
	// HTTPClient sends every request (each carries its check's deadline);
	// default a plain &http.Client{}.
	HTTPClient *http.Client
}

func (t SeedTargets) withDefaults() SeedTargets {
	if t.MockJob == "" {
		t.MockJob = "mock-metrics"
	}
	if t.AlertService == "" {
		t.AlertService = "mock-service"
	}
	if t.CheckTimeout <= 0 {
		t.CheckTimeout = 30 * time.Second
	}
	if t.AlertTimeout <= 0 {
		t.AlertTimeout = 60 * time.Second
	}
	if t.HTTPClient == nil {
		t.HTTPClient = &http.Client{}
	}
	t.MockURL = strings.TrimRight(t.MockURL, "/")
	t.PrometheusURL = strings.TrimRight(t.PrometheusURL, "/")
	t.ServiceURL = strings.TrimRight(t.ServiceURL, "/")
	t.QueryURL = strings.TrimRight(t.QueryURL, "/")
	if t.QueryURL == "" {
		t.QueryURL = t.PrometheusURL
	}
	if t.WebSocketURL == "" {
		t.WebSocketURL = webSocketURL(t.ServiceURL)
	}
	return t
}

// webSocketURL turns http://host:port into ws://host:port/.
func webSocketURL(service string) string {
	u, err := url.Parse(service)
	if err != nil {
		return service
	}
	switch u.Scheme {
	case "https":
		u.Scheme = "wss"
	default:
		u.Scheme = "ws"
	}
	u.Path = strings.TrimRight(u.Path, "/") + "/"
	return u.String()
}

// SeedCheck is the outcome of one check.
type SeedCheck struct {
	Stage    SeedStage
	Name     string // as in the seed report, e.g. "Health Check"
	Passed   bool
	Details  string // e.g. `HTTP 200 - "Mock Metrics Service is UP!"`, or why it failed
	Duration time.Duration
}

// SeedValue follows one simulated metric through the pipeline: the value
// set on mock-metrics, the value Prometheus returned and the value
// service-metrics broadcast. The Seen fields say whether a value was
// observed.
type SeedValue struct {
	Metric         string
	Simulated      float64
	Prometheus     float64
	PrometheusSeen bool
	Service        float64
	ServiceSeen    bool
}

// SeedServiceRow is one row of the by-service answer.
type SeedServiceRow struct {
	Service                             string
	Total, Open, Acknowledged, Resolved int64
}

// SeedReport is what [RunSeedChecks] found. Write it with
// [SeedReport.WriteMarkdown].
type SeedReport struct {
	Targets  SeedTargets // with defaults applied
	Started  time.Time
	Duration time.Duration
	Checks   []SeedCheck
	Values   []SeedValue

	// Observations shown in the report beside the checks.
	MetricCount       int       // metric families on mock-metrics' /metrics
	MetricSample      []string  // a few of their names
	ScrapeURL         string    // the mock-metrics target's scrape URL
	ScrapeInterval    string    // as Prometheus reports it, e.g. "1s"
	LastScrape        time.Time // of the mock-metrics target
	WebSocketKeys     []string  // query names of the first instant_metrics message
	WebSocketSample   string    // its timestamp
	BroadcastInterval time.Duration
	Services          []SeedServiceRow
}

// Totals returns the number of checks, passed and failed.
func (r *SeedReport) Totals() (total, passed, failed int) {
	for _, c := range r.Checks {
		if c.Passed {
			passed++
		} else {
			failed++
		}
	}
	return len(r.Checks), passed, failed
}

// Passed reports whether there was at least one check and every check
// passed.
func (r *SeedReport) Passed() bool {
	total, passed, _ := r.Totals()
	return total > 0 && passed == total
}

// Failed returns the checks that failed.
func (r *SeedReport) Failed() []SeedCheck {
	var out []SeedCheck
	for _, c := range r.Checks {
		if !c.Passed {
			out = append(out, c)
		}
	}
	return out
}

// seedMetric is one of the three simulated metrics of the seed report.
type seedMetric struct {
	metric, route, check, unit string
	query                      promquery.Selector
	value                      float64
}

func seedMetrics() []seedMetric {
	return []seedMetric{
		{"mock_high_memory_usage_bytes", "/simulate/memory-usage/78", "Simulate Memory Usage", "78%",
			promquery.Select("mock_high_memory_usage_bytes"), 78},
		{"mock_high_cpu_usage_percent", "/simulate/cpu-usage/78", "Simulate CPU Usage", "78%",
			promquery.Select("mock_high_cpu_usage_percent"), 78},
		{"mock_disk_usage_percent", "/simulate/disk-usage/sda/85", "Simulate Disk Usage", "85% (device: sda)",
			promquery.Select("mock_disk_usage_percent", promquery.Eq("device", "sda")), 85},
	}
}

// errCheck marks a check whose answer was not the expected one; the
// details say what was seen.
var errCheck = errors.New("unexpected answer")

// seedRun is the state of one [RunSeedChecks] call.
type seedRun struct {
	t         SeedTargets
	r         *SeedReport
	metrics   []seedMetric
	simulated []bool // per metric: the simulate route answered 200
	prom      *promquery.Client
	promErr   error
	query     *promquery.Client // QueryURL; prom when the same
	ws        *wsFeed
	instant   *wsMessage // the instant_metrics message of stage 4
}

// RunSeedChecks runs the seed report's 19 checks in its 5 stages against
// the services of t, then (with t.AlertLoop) the alert → incident loop.
// Every check is bounded by t.CheckTimeout (t.AlertTimeout in the loop)
// and by ctx; a check that cannot run (ctx ended, a service down, an
// earlier step failed) is recorded as failed with the reason, so the report
// always lists every check. It never panics on unexpected answers and
// leaves no goroutine behind. The checks set the simulated values on
// mock-metrics (memory 78, CPU 78, disk sda 85), as the seed's test does.
func RunSeedChecks(ctx context.Context, t SeedTargets) *SeedReport {
	t = t.withDefaults()
	ms := seedMetrics()
	r := &SeedReport{Targets: t, Started: time.Now()}
	for _, m := range ms {
		r.Values = append(r.Values, SeedValue{Metric: m.metric, Simulated: m.value})
	}
	s := &seedRun{t: t, r: r, metrics: ms, simulated: make([]bool, len(ms))}
	s.prom, s.promErr = promquery.New(t.PrometheusURL, promquery.Options{HTTPClient: t.HTTPClient})
	s.query = s.prom
	if t.QueryURL != t.PrometheusURL && s.promErr == nil {
		s.query, s.promErr = promquery.New(t.QueryURL, promquery.Options{HTTPClient: t.HTTPClient})
	}
	defer s.close()

	s.mockStage(ctx)
	s.prometheusStage(ctx)
	s.serviceStage(ctx)
	s.webSocketStage(ctx)
	s.flowStage(ctx)
	if t.AlertLoop {
		s.alertStage(ctx)
	}
	r.Duration = time.Since(r.Started)
	return r
}

func (s *seedRun) close() {
	if s.ws != nil {
		s.ws.close()
	}
	if s.query != nil && s.query != s.prom {
		_ = s.query.Close()
	}
	if s.prom != nil {
		_ = s.prom.Close()
	}
}

// check runs fn with a deadline and records the outcome. fn returns the
// details and nil on success, or the details seen and an error.
func (s *seedRun) check(ctx context.Context, stage SeedStage, name string, timeout time.Duration, fn func(context.Context) (string, error)) bool {
	start := time.Now()
	cctx, cancel := context.WithTimeout(ctx, timeout)
	details, err := safeCall(cctx, fn)
	cancel()
	c := SeedCheck{Stage: stage, Name: name, Passed: err == nil, Details: details, Duration: time.Since(start)}
	if err != nil && !errors.Is(err, errCheck) {
		if details != "" {
			c.Details = details + " — " + err.Error()
		} else {
			c.Details = err.Error()
		}
	}
	if c.Details == "" && err != nil {
		c.Details = "échec"
	}
	c.Details = shorten(c.Details, maxDetails)
	s.r.Checks = append(s.r.Checks, c)
	return c.Passed
}

// safeCall calls fn, turning a panic into an error: one odd answer must
// not take the whole report down.
func safeCall(ctx context.Context, fn func(context.Context) (string, error)) (details string, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	if err := ctx.Err(); err != nil {
		return "non exécuté", err
	}
	return fn(ctx)
}

// httpAnswer is a response read in full (up to maxBody).
type httpAnswer struct {
	code   int
	header http.Header
	body   []byte
}

const (
	maxBody    = 16 << 20
	maxDetails = 300 // runes of a check's details: one table cell
)

func (s *seedRun) do(ctx context.Context, method, u string) (httpAnswer, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return httpAnswer{}, err
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "text/plain")
	}
	resp, err := s.t.HTTPClient.Do(req)
	if err != nil {
		return httpAnswer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return httpAnswer{}, fmt.Errorf("%s %s: reading the body: %w", method, u, err)
	}
	return httpAnswer{code: resp.StatusCode, header: resp.Header, body: b}, nil
}

// shorten returns s on one line, cut to n runes.
func shorten(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}
