package servicemetrics

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/promflow/promflow/httpedge"
	"github.com/promflow/promflow/incidents"
)

// dbState is what the service has of PostgreSQL once it could migrate:
// the store, its REST handler, its collector and the change feed.
type dbState struct {
	store     *incidents.Store
	sub       *incidents.Subscription
	api       http.Handler
	collector *incidents.Collector
	analytics *incidents.AnalyticsCollector
	writable  bool
}

// Database retry backoff while PostgreSQL is unreachable.
const (
	dbRetryMin = 500 * time.Millisecond
	dbRetryMax = 30 * time.Second
)

// openDB migrates the schema (a role that may only read is fine on a
// current schema: the service then serves reads), loads the demo data if
// asked, and subscribes to the change feed.
func (s *Server) openDB(ctx context.Context) (*dbState, error) {
	pool := s.cfg.Pool
	if err := s.migrate(ctx); err != nil {
		return nil, err
	}
	writable, err := incidents.Writable(ctx, pool)
	if err != nil {
		return nil, err
	}
	if s.cfg.Demo && writable {
		n, err := incidents.LoadDemo(ctx, pool)
		if err != nil {
			return nil, fmt.Errorf("demo data: %w", err)
		}
		s.log.Info("demo data loaded", "incidents_added", n, "incidents_in_set", incidents.DemoIncidents)
	}
	if !writable {
		s.log.Warn("PostgreSQL role cannot write: serving reads only (writes and the webhook answer 503)")
	}
	st := &dbState{writable: writable}
	st.store = incidents.NewStore(pool, incidents.Options{Logger: s.log})
	st.sub, err = st.store.Subscribe(ctx, incidents.SubscribeOptions{Logger: s.log, ListenConnString: s.cfg.ListenURL})
	if err != nil {
		return nil, err
	}
	st.api = incidents.NewHandler(st.store, incidents.HandlerOptions{Logger: s.log, Intake: s.cfg.Intake, ReadOnly: !writable})
	st.collector = incidents.NewCollector(st.store, incidents.CollectorOptions{})
	st.analytics = incidents.NewAnalyticsCollector(st.store, incidents.AnalyticsCollectorOptions{})
	return st, nil
}

// migrate runs incidents.Migrate on Config.ListenURL's direct connection
// when set (its session advisory lock would leak through a
// transaction-pooling proxy), else on the pool.
func (s *Server) migrate(ctx context.Context) error {
	if s.cfg.ListenURL == "" {
		return incidents.Migrate(ctx, s.cfg.Pool)
	}
	cfg, err := pgxpool.ParseConfig(s.cfg.ListenURL)
	if err != nil { // pgx's parse errors do not show the password
		return fmt.Errorf("ListenURL: %w", err)
	}
	cfg.MinConns, cfg.MaxConns = 0, 1
	direct, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("ListenURL: %w", err)
	}
	defer direct.Close()
	return incidents.Migrate(ctx, direct)
}

// transient reports whether err means PostgreSQL could not be reached (try
// again later) rather than a problem retrying cannot fix.
func transient(err error) bool {
	return errors.Is(err, incidents.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded)
}

// connectDB retries openDB with backoff until it succeeds or ctx ends,
// then serves the change feed until ctx ends.
func (s *Server) connectDB(ctx context.Context) {
	delay := dbRetryMin
	for {
		st, err := s.openDB(ctx)
		if err == nil {
			s.dbp.Store(st)
			s.log.Info("PostgreSQL reachable: incidents API up")
			s.goReconcile(ctx, st)
			s.forwardEvents(ctx, st.sub)
			return
		}
		s.log.Warn("PostgreSQL not ready, retrying", "in", delay.String(), "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, dbRetryMax)
	}
}

// apiHandler serves the incidents API once the database is up, and 503
// until then.
func (s *Server) apiHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := s.dbp.Load()
		if st == nil {
			w.Header().Set("Retry-After", "5")
			httpedge.Error(w, http.StatusServiceUnavailable, "database unavailable: service-metrics is connecting to PostgreSQL")
			return
		}
		st.api.ServeHTTP(w, r)
	})
}

// dbCollector exposes the incidents collector's metrics once the database
// is up. It is unchecked (describes nothing), since what it collects
// appears only later.
type dbCollector struct{ s *Server }

func (c dbCollector) Describe(chan<- *prometheus.Desc) {}

func (c dbCollector) Collect(ch chan<- prometheus.Metric) {
	if st := c.s.dbp.Load(); st != nil {
		st.collector.Collect(ch)
		st.analytics.Collect(ch)
	}
}

// alertmanagerCheck asks an Alertmanager whether it is ready.
type alertmanagerCheck struct {
	url    string
	client *http.Client
}

func newAlertmanagerCheck(base string) (*alertmanagerCheck, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("servicemetrics: AlertmanagerURL %q: want an http(s) URL", base)
	}
	return &alertmanagerCheck{url: strings.TrimSuffix(base, "/") + "/-/ready", client: &http.Client{}}, nil
}

// Ready reports whether Alertmanager answers /-/ready with 200.
func (a *alertmanagerCheck) Ready(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.url, nil)
	if err != nil {
		return err
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("alertmanager: %s", resp.Status)
	}
	return nil
}

// goReconcile runs reconcile beside the change feed, owned by s.wg (the
// caller holds a count of it).
func (s *Server) goReconcile(ctx context.Context, st *dbState) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.reconcile(ctx, st)
	}()
}

// reconcile resolves the open alert-backed incidents whose alert is no
// longer active in Alertmanager (it may have stopped firing while the
// service was down), when an Alertmanager is configured and the role can
// write. A failure is logged: the webhook keeps incidents current anyway.
func (s *Server) reconcile(ctx context.Context, st *dbState) {
	if s.cfg.AlertmanagerURL == "" || !st.writable {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	res, err := incidents.ReconcileAlertmanager(ctx, st.store, s.cfg.AlertmanagerURL, nil)
	if err != nil {
		s.log.Warn("reconcile incidents with Alertmanager", "err", err)
		return
	}
	if len(res.Resolved) > 0 {
		s.log.Info("incidents resolved by reconciliation: their alert is no longer active", "count", len(res.Resolved), "active_alerts", res.Active)
	}
}
