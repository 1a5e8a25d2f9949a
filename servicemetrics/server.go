package servicemetrics

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/promflow/promflow/broadcast"
	"github.com/promflow/promflow/httpedge"
	"github.com/promflow/promflow/incidents"
	"github.com/promflow/promflow/promquery"
)

//go:embed web
var webFS embed.FS

// Config configures [New]. PrometheusURL and Pool are required; every other
// zero field has a working default.
type Config struct {
	PrometheusURL string
	Pool          *pgxpool.Pool
	// ListenURL, if set, is a direct PostgreSQL connection string for
	// what a transaction-pooling proxy (PgBouncer, pool_mode =
	// transaction) cannot carry: the change feed's LISTEN connection and
	// the schema migration, which holds a session advisory lock. Set it
	// when Pool goes through such a proxy; Pool's URL then needs
	// default_query_exec_mode=cache_describe (or exec, or
	// simple_protocol), since pgx's default prepared statements do not
	// survive transaction pooling. Default: Pool's own configuration.
	// See "Replicas" in the package documentation.
	ListenURL string
	// PollInterval between Prometheus polls; default 10s.
	PollInterval time.Duration
	// Instant queries published as instant_metrics; default the seed's
	// three (DefaultInstantQueries) plus ExtraQueries.
	Instant      []Query
	ExtraQueries []Query
	// Range queries published as range_metrics. Default (nil): each
	// instant query over the last RangePoints poll intervals, one point
	// per interval, so that a dashboard opened or reloaded has its charts'
	// history at once. A non-nil empty slice publishes none.
	Range []RangeQuery
	// AllowedOrigins are the browser origins whose pages may open the
	// WebSocket, besides same-origin pages and clients that send no
	// Origin (httpedge.ParseOrigins syntax; "*" allows any). Default
	// (nil): httpedge.LocalDevOrigins, pages served from this machine on
	// any port.
	AllowedOrigins []string
	// CORSOrigins are the origins whose pages may read the REST API
	// (httpedge.ParseOrigins syntax). Default (nil): "*", as the original
	// service. Cross-origin writes are allowed only to origins listed by
	// name here, never to "*".
	CORSOrigins []string
	// AlertmanagerURL, if set, is the Alertmanager that sends the
	// webhook: /ready reports it too.
	AlertmanagerURL string
	// Demo loads the seed report's data set (5 services, 9 incidents;
	// incidents.LoadDemo) once the schema is migrated. It is idempotent.
	Demo bool
	// WriteToken, if set, is required (Authorization: Bearer) on every
	// state-changing route; WebhookToken is accepted besides it on the
	// Alertmanager webhook (Alertmanager's http_config.authorization).
	// Without tokens only loopback clients may write. Either way
	// cross-site browser writes are refused (httpedge.Guard).
	WriteToken   string
	WebhookToken string
	// SnapshotDelay holds back the latest snapshots a new WebSocket
	// client gets until it sends its first message, or for this long
	// (broadcast.HubOptions.SnapshotDelay), so that a client of the
	// original service that reads the welcome and closes sees nothing
	// else. Default DefaultSnapshotDelay; negative sends them at once.
	SnapshotDelay time.Duration
	// Compression negotiates permessage-deflate with the WebSocket
	// clients that offer it (Chromium and Firefox do), each message
	// compressed once for all of them (broadcast.HubOptions.Compression).
	// Off by default.
	Compression bool
	// Intake configures the Alertmanager webhook (e.g. the service label).
	Intake incidents.IntakeOptions
	Logger *slog.Logger
}

// WebhookPath is the route of the Alertmanager webhook.
const WebhookPath = "/api/alertmanager/webhook"

// DefaultSnapshotDelay is Config.SnapshotDelay's default.
const DefaultSnapshotDelay = 500 * time.Millisecond

// RangePoints is how many poll intervals the default range queries cover
// (the dashboard's charts keep as many points).
const RangePoints = 60

// Server is a running service-metrics: its poller and change-feed
// forwarder run until Close.
type Server struct {
	cfg     Config
	log     *slog.Logger
	prom    *promquery.Client
	dbp     atomic.Pointer[dbState] // nil until PostgreSQL could be migrated
	am      *alertmanagerCheck      // nil without Config.AlertmanagerURL
	hub     *broadcast.Hub
	poller  *Poller
	alerts  *AlertsPoller
	reg     *prometheus.Registry
	cors    httpedge.CORSOptions
	handler http.Handler

	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// New migrates the incidents schema, subscribes to its change feed, and
// starts the poller. The poller's first poll runs at once.
func New(ctx context.Context, cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	cors, err := corsOptions(cfg.CORSOrigins)
	if err != nil {
		return nil, err
	}
	prom, err := promquery.New(cfg.PrometheusURL, promquery.Options{})
	if err != nil {
		return nil, fmt.Errorf("servicemetrics: %w", err)
	}
	s := &Server{cfg: cfg, log: cfg.Logger, prom: prom, cors: cors}
	if err := s.build(); err != nil {
		_ = prom.Close()
		return nil, err
	}
	// PostgreSQL: reachable now, or retried in the background (the API
	// answers 503 meanwhile); any other failure is a configuration error.
	st, dbErr := s.openDB(ctx)
	if dbErr != nil && !transient(dbErr) {
		_ = prom.Close()
		return nil, fmt.Errorf("servicemetrics: %w", dbErr)
	}
	s.dbp.Store(st)
	s.start(st, dbErr)
	return s, nil
}

// withDefaults checks cfg and fills in its defaults.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.Pool == nil {
		return cfg, errors.New("servicemetrics: Config.Pool is required")
	}
	if cfg.PrometheusURL == "" {
		return cfg, errors.New("servicemetrics: Config.PrometheusURL is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Instant == nil {
		cfg.Instant = DefaultInstantQueries()
	}
	cfg.Instant = append(append([]Query(nil), cfg.Instant...), cfg.ExtraQueries...)
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.AllowedOrigins == nil {
		cfg.AllowedOrigins = httpedge.LocalDevOrigins
	}
	if cfg.CORSOrigins == nil {
		cfg.CORSOrigins = []string{"*"}
	}
	if cfg.SnapshotDelay == 0 {
		cfg.SnapshotDelay = DefaultSnapshotDelay
	}
	if cfg.Range == nil {
		for _, q := range cfg.Instant {
			cfg.Range = append(cfg.Range, RangeQuery{
				Name: q.Name, Query: q.Query,
				Window: RangePoints * cfg.PollInterval, Step: cfg.PollInterval,
			})
		}
	}
	return cfg, nil
}

// build makes the hub, the pollers, the registry and the routes.
func (s *Server) build() error {
	cfg := s.cfg
	var err error
	if cfg.AlertmanagerURL != "" {
		if s.am, err = newAlertmanagerCheck(cfg.AlertmanagerURL); err != nil {
			return err
		}
	}
	wsOrigins, err := httpedge.ParseOrigins(cfg.AllowedOrigins)
	if err != nil {
		return fmt.Errorf("servicemetrics: AllowedOrigins: %w", err)
	}
	s.hub, err = broadcast.NewHub(broadcast.HubOptions{
		Topics:         Topics(),
		ConnectMessage: ConnectMessage,
		CheckOrigin:    wsOrigins.Allows,
		SnapshotDelay:  max(cfg.SnapshotDelay, 0),
		Compression:    cfg.Compression,
		Logger:         cfg.Logger,
	})
	if err != nil {
		return fmt.Errorf("servicemetrics: %w", err)
	}
	s.poller, err = NewPoller(s.prom, s.hub, PollerOptions{
		Interval: cfg.PollInterval, Instant: cfg.Instant, Range: cfg.Range, Logger: cfg.Logger,
	})
	if err != nil {
		return fmt.Errorf("servicemetrics: %w", err)
	}
	s.alerts, err = NewAlertsPoller(s.prom, s.hub, AlertsOptions{
		Interval: cfg.PollInterval, Link: s.linkIncidents, Logger: cfg.Logger,
	})
	if err != nil {
		return fmt.Errorf("servicemetrics: %w", err)
	}
	s.reg = prometheus.NewRegistry()
	s.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		s.hub, s.poller, dbCollector{s},
	)
	guard := httpedge.GuardOptions{Token: cfg.WriteToken, Origins: s.cors.Write}
	if cfg.WebhookToken != "" {
		guard.PathTokens = map[string]string{WebhookPath: cfg.WebhookToken}
	}
	s.handler = httpedge.CORS(httpedge.Guard(s.routes(), guard), s.cors)
	return nil
}

// start runs the pollers and the change feed (st, or the database retry
// loop while st is nil), owned by s.wg until Shutdown.
func (s *Server) start(st *dbState, dbErr error) {
	runCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.wg.Add(3)
	go func() {
		defer s.wg.Done()
		if err := s.poller.Run(runCtx); err != nil && !errors.Is(err, context.Canceled) {
			s.log.Error("poller stopped", "err", err)
		}
	}()
	go func() {
		defer s.wg.Done()
		_ = s.alerts.Run(runCtx) // returns when runCtx ends
	}()
	go func() {
		defer s.wg.Done()
		if st != nil {
			s.goReconcile(runCtx, st)
			s.forwardEvents(runCtx, st.sub)
			return
		}
		s.log.Warn("PostgreSQL unreachable at start: retrying in the background", "err", dbErr)
		s.connectDB(runCtx)
	}()
}

// incidentMessage is what WebSocket clients receive on topic "incident".
// CatchUp marks the events published after a resync (see forwardEvents).
type incidentMessage struct {
	Type      string          `json:"type"`
	Timestamp string          `json:"timestamp"`
	Data      incidents.Event `json:"data"`
	CatchUp   bool            `json:"catch_up,omitempty"`
}

// forwardEvents publishes the change feed's events on the hub until ctx
// ends, in the feed's order. After a resync (the feed reconnected:
// changes made meanwhile were not announced) it publishes the resync
// event, {"type":"incident","data":{"kind":"resync"}}, then each incident
// changed since the last change seen (catchUp, marked "catch_up"), so no
// change is lost; clients may also refetch on the resync.
func (s *Server) forwardEvents(ctx context.Context, sub *incidents.Subscription) {
	seen := time.Now().Add(-catchUpMargin) // the feed listens from about now
	for {
		ev, err := sub.Next(ctx)
		if err != nil {
			return
		}
		s.publishEvent(ev, false)
		switch {
		case ev.Kind == incidents.EventResync:
			seen = s.catchUp(ctx, seen)
		case ev.Incident != nil && ev.Incident.UpdatedAt.After(seen):
			seen = ev.Incident.UpdatedAt
		}
	}
}

func (s *Server) publishEvent(ev incidents.Event, catchUp bool) {
	msg := incidentMessage{Type: TopicIncident, Timestamp: timestamp(time.Now()), Data: ev, CatchUp: catchUp}
	if err := s.hub.Publish(TopicIncident, msg); err != nil && !errors.Is(err, broadcast.ErrClosed) {
		s.log.Error("publish incident event", "err", err)
	}
}

// linkIncidents is the alerts poller's IncidentLinker: the store's
// incidents by fingerprint.
func (s *Server) linkIncidents(ctx context.Context, fingerprints []string) (map[string]IncidentRef, error) {
	st := s.dbp.Load()
	if st == nil {
		return nil, errConnecting
	}
	found, err := st.store.ByFingerprint(ctx, fingerprints)
	if err != nil {
		return nil, err
	}
	refs := make(map[string]IncidentRef, len(found))
	for fp, in := range found {
		refs[fp] = IncidentRef{ID: in.ID, Status: string(in.Status)}
	}
	return refs, nil
}

// ServeHTTP serves the service's routes:
//
//	GET /health                 {"status":"ok","timestamp":...}
//	GET /ready                  Prometheus and PostgreSQL checked separately; 503 when either is down
//	GET /metrics                the service's own metrics
//	/api/...                    incidents REST and POST /api/alertmanager/webhook
//	GET /ws, and / with Upgrade WebSocket
//	GET /                       the dashboard
//
// Cross-origin requests are answered per Config.CORSOrigins.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Hub returns the WebSocket hub, e.g. to publish more topics.
func (s *Server) Hub() *broadcast.Hub { return s.hub }

// Store returns the incidents store, or nil while PostgreSQL has not been
// reachable yet.
func (s *Server) Store() *incidents.Store {
	if st := s.dbp.Load(); st != nil {
		return st.store
	}
	return nil
}

// Registry returns the registry behind /metrics, to register more collectors.
func (s *Server) Registry() *prometheus.Registry { return s.reg }

// Shutdown stops the poller and the change feed and shuts the hub down
// gracefully: every WebSocket client gets close code 1001. If ctx ends
// first, the remaining connections are closed at once and ctx.Err() is
// returned. It is idempotent; the HTTP server serving s is the caller's to
// shut down.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closeOnce.Do(func() {
		s.cancel()
		s.wg.Wait()
		errs := []error{s.hub.Shutdown(ctx), s.prom.Close()}
		if st := s.dbp.Load(); st != nil {
			errs = append(errs, st.sub.Close())
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// Close is Shutdown without the close handshake: WebSocket connections
// are closed at once.
func (s *Server) Close() error {
	_ = s.hub.Close()
	return s.Shutdown(context.Background())
}

var _ http.Handler = (*Server)(nil)

// corsOptions builds the CORS policy: reads per origins ("*" as the
// original), writes for the origins listed by name.
func corsOptions(origins []string) (httpedge.CORSOptions, error) {
	p, err := httpedge.ParseOrigins(origins)
	if err != nil {
		return httpedge.CORSOptions{}, fmt.Errorf("servicemetrics: CORSOrigins: %w", err)
	}
	return httpedge.CORSOptions{Read: p, Write: p}, nil
}

func (s *Server) routes() http.Handler {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "http_requests_total",
		Help: "HTTP requests served by service-metrics, by route, method and status code.",
	}, []string{"handler", "method", "code"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "http_request_duration_seconds",
		Help:    "Latency of HTTP requests served by service-metrics, by route.",
		Buckets: prometheus.DefBuckets,
	}, []string{"handler", "method", "code"})
	s.reg.MustRegister(requests, duration)
	instrument := func(name string, h http.Handler) http.Handler {
		l := prometheus.Labels{"handler": name}
		return promhttp.InstrumentHandlerCounter(requests.MustCurryWith(l),
			promhttp.InstrumentHandlerDuration(duration.MustCurryWith(l), h))
	}

	mux := http.NewServeMux()
	mux.Handle("/api/", instrument("/api", s.apiHandler()))
	mux.Handle("GET /health", instrument("/health", http.HandlerFunc(s.health)))
	mux.Handle("GET /ready", instrument("/ready", http.HandlerFunc(s.ready)))
	mux.Handle("GET /metrics", instrument("/metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{
		EnableOpenMetrics: true,
		// A failing collector (the database is down) loses its own
		// metrics, not the whole answer; the error goes to the log only.
		ErrorHandling: promhttp.ContinueOnError,
		ErrorLog:      slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	})))
	mux.Handle("/ws", s.hub) // WebSocket connections are long-lived: not instrumented
	assets := dashboardAssets()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if broadcast.IsWebSocketUpgrade(r) && r.URL.Path == "/" {
			s.hub.ServeHTTP(w, r)
			return
		}
		if getOnly[r.URL.Path] {
			// Reached here only with another method: "GET /health" and
			// the like took GET and HEAD.
			w.Header().Set("Allow", "GET, HEAD")
			writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"status": "error", "error": "method " + truncate(r.Method, 20) + " not allowed on " + r.URL.Path})
			return
		}
		a, ok := assets[r.URL.Path]
		if !ok {
			writeJSON(w, http.StatusNotFound, map[string]string{"status": "error", "error": "no such route: " + truncate(r.URL.Path, 200)})
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"status": "error", "error": "method " + truncate(r.Method, 20) + " not allowed"})
			return
		}
		w.Header().Set("Content-Type", a.contentType)
		w.Header().Set("Content-Length", strconv.Itoa(len(a.body)))
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		_, _ = w.Write(a.body)
	})
	return mux
}

// asset is one embedded file of the dashboard.
type asset struct {
	contentType string
	body        []byte
}

// dashboardAssets are the dashboard's files by URL path: the page on "/",
// its script and style sheet beside it.
func dashboardAssets() map[string]asset {
	out := map[string]asset{}
	for path, a := range map[string]struct{ file, typ string }{
		"/":        {"web/index.html", "text/html; charset=utf-8"},
		"/app.js":  {"web/app.js", "text/javascript; charset=utf-8"},
		"/app.css": {"web/app.css", "text/css; charset=utf-8"},
	} {
		b, err := fs.ReadFile(webFS, a.file)
		if err != nil {
			panic("servicemetrics: embedded dashboard file missing: " + a.file) // a build defect
		}
		out[path] = asset{contentType: a.typ, body: b}
	}
	return out
}

// getOnly are the routes registered for GET (and so HEAD) only; the
// catch-all "/" would otherwise answer their other methods with 404.
var getOnly = map[string]bool{"/health": true, "/ready": true, "/metrics": true}

func (s *Server) health(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "timestamp": timestamp(time.Now())})
}

type check struct {
	Status string `json:"status"`
	Mode   string `json:"mode,omitempty"` // "read-only" for a role that cannot write
	Error  string `json:"error,omitempty"`
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	checks := map[string]func(context.Context) error{
		"prometheus": s.prom.Ready,
		"postgres":   s.pingDB,
	}
	if s.am != nil {
		checks["alertmanager"] = s.am.Ready
	}
	body := map[string]any{"status": "ok", "timestamp": timestamp(time.Now())}
	var mu sync.Mutex
	var wg sync.WaitGroup
	failed := map[string]any{}
	for name, check := range checks {
		wg.Go(func() {
			c := checkResult(check(ctx))
			mu.Lock()
			defer mu.Unlock()
			body[name] = c
			if c.Status != "up" {
				failed[name] = c.Error
			}
		})
	}
	wg.Wait()
	if st := s.dbp.Load(); st != nil && !st.writable {
		body["postgres"] = check{Status: "up", Mode: "read-only"}
	}
	code := http.StatusOK
	if len(failed) > 0 {
		body["status"] = "unavailable"
		code = http.StatusServiceUnavailable
		s.log.Warn("not ready", "failed", failed)
	}
	writeJSON(w, code, body)
}

// errConnecting: PostgreSQL has not been reachable since the start.
var errConnecting = errors.New("connecting")

// pingDB checks PostgreSQL: reachable, and the schema migrated (which the
// service retries in the background when it could not at start).
func (s *Server) pingDB(ctx context.Context) error {
	if s.dbp.Load() == nil {
		return errConnecting
	}
	return s.cfg.Pool.Ping(ctx)
}

// checkResult reports a dependency check. Errors name the dependency's
// state, never credentials, addresses or SQL.
func checkResult(err error) check {
	switch {
	case err == nil:
		return check{Status: "up"}
	case errors.Is(err, errConnecting):
		return check{Status: "down", Error: "connecting"}
	}
	return check{Status: "down", Error: "unreachable"}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func timestamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
