package promflowtest

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/promflow/promflow/httpedge"
	"github.com/promflow/promflow/internal/supervise"
	"github.com/promflow/promflow/mockexporter"
	"github.com/promflow/promflow/promquery"
	"github.com/promflow/promflow/servicemetrics"
)

// AlertRules are the shipped alert rules on the mock_* metrics (Prometheus
// rule file format). Every alert carries a "service" label.
//
//go:embed rules.yml
var AlertRules string

// MockQueries are the instant queries the pipeline's service-metrics polls
// besides the seed's three: the simulated metrics the seed report checks.
func MockQueries() []servicemetrics.Query {
	return []servicemetrics.Query{
		{Name: "mock_high_memory_usage_bytes", Query: "mock_high_memory_usage_bytes"},
		{Name: "mock_high_cpu_usage_percent", Query: "mock_high_cpu_usage_percent"},
		{Name: "mock_disk_usage_percent", Query: "mock_disk_usage_percent"},
	}
}

// WebhookPlaceholder, in [PipelineOptions].AlertmanagerConfig, stands for
// the URL of service-metrics' Alertmanager webhook, e.g.
//
//	receivers:
//	  - name: incidents
//	    webhook_configs: [{url: "${SERVICE_METRICS_WEBHOOK}", send_resolved: true}]
const WebhookPlaceholder = "${SERVICE_METRICS_WEBHOOK}"

// ReceiverPlaceholder, in [PipelineOptions].AlertmanagerConfig, stands for
// the base URL of [PipelineOptions].Receiver: a webhook url of
// "${RECEIVER_URL}/pager" records notifications with Path "/pager".
const ReceiverPlaceholder = "${RECEIVER_URL}"

// TokenPlaceholder in PipelineOptions.AlertmanagerConfig is replaced by
// PipelineOptions.WriteToken, for the webhook's http_config.authorization
// credentials.
const TokenPlaceholder = "${WRITE_TOKEN}"

// LoopbackOrigins is the --web.cors.origin of the pipeline's Prometheus:
// pages served from this machine (localhost, 127.0.0.1, [::1], any port)
// may read its API; other sites' pages may not.
const LoopbackOrigins = `https?://(localhost|127\.0\.0\.1|\[::1\])(:[0-9]+)?`

// PipelineOptions selects addresses and external components. Every zero field has a
// working default: the seed's ports on loopback, a local Prometheus and
// Alertmanager started as children, the local PostgreSQL. These are
// [StartPipeline]'s defaults; [Pipeline] fills zero fields with free ports,
// a fresh database, 1s intervals and a Receiver instead. Rules and
// AlertmanagerConfig apply to the Prometheus and Alertmanager the pipeline
// starts, not to external ones.
type PipelineOptions struct {
	// MockAddr and ServiceAddr default to localhost:8082 and
	// localhost:8005. A "localhost" address listens on both loopbacks
	// (127.0.0.1 and [::1], for clients that resolve localhost to ::1);
	// any other address is taken as given. The same holds for
	// PrometheusAddr and AlertmanagerAddr (their children listen on
	// 127.0.0.1 and the pipeline forwards [::1] to them).
	MockAddr    string
	ServiceAddr string

	// PrometheusURL selects an external Prometheus; empty starts one on
	// PrometheusAddr (default localhost:9090). An external Prometheus must
	// scrape mock-metrics itself.
	PrometheusURL  string
	PrometheusAddr string
	// AlertmanagerURL selects an external Alertmanager; empty starts one on
	// AlertmanagerAddr (default localhost:9093) whose webhook is
	// service-metrics' /api/alertmanager/webhook.
	AlertmanagerURL  string
	AlertmanagerAddr string
	// Backend is what service-metrics queries: [BackendPrometheus] (also
	// the empty default) queries the Prometheus that scrapes;
	// [BackendVictoriaMetrics] starts a single-node VictoriaMetrics child on
	// VictoriaMetricsAddr (default localhost:8428) that the pipeline's
	// Prometheus remote-writes everything to, and service-metrics queries
	// it. Prometheus keeps scraping and evaluating the alert rules either
	// way. An external Prometheus (PrometheusURL) must remote-write to
	// VictoriaMetricsURL itself.
	Backend             string
	VictoriaMetricsAddr string
	// PrometheusLifecycle starts the pipeline's Prometheus with its
	// lifecycle and admin APIs (POST /-/quit, /-/reload, TSDB admin); off
	// by default, since any page or client reaching the port could stop it
	// or delete its data. See [PrometheusOptions].EnableLifecycle.
	PrometheusLifecycle bool
	// DatabaseURL defaults to DefaultDatabaseURL. PostgreSQL need not be
	// up: service-metrics retries in the background and its API answers
	// 503 meanwhile.
	DatabaseURL string

	// AllowedOrigins and CORSOrigins are service-metrics' browser origin
	// settings (servicemetrics.Config); nil keeps its defaults.
	AllowedOrigins []string
	CORSOrigins    []string
	// Demo loads the seed report's incidents (servicemetrics.Config.Demo).
	Demo bool
	// WriteToken, if set, is required (Authorization: Bearer) on every
	// state-changing route of mock-metrics and service-metrics; the
	// generated Alertmanager configuration sends it with the webhook.
	// Without it, those routes accept loopback clients only.
	WriteToken string

	ScrapeInterval time.Duration // also the rule evaluation interval; default 5s
	PollInterval   time.Duration // default 10s

	// Rules is a Prometheus rule file (YAML) loaded besides the shipped
	// [AlertRules]; set OmitShippedRules to load it instead of them.
	Rules            string
	OmitShippedRules bool
	// AlertmanagerConfig is a complete Alertmanager configuration (YAML)
	// for the Alertmanager the pipeline starts, used as it is after two
	// replacements: [WebhookPlaceholder] becomes service-metrics' webhook
	// URL (route alerts to a receiver with that url for incidents to
	// open), and [ReceiverPlaceholder] the URL of Receiver. Empty: one
	// receiver that sends every notification to service-metrics and to
	// Receiver (when set), grouped by all labels, group_wait 0s,
	// group_interval 1s.
	AlertmanagerConfig string
	// Receiver records notifications; [Pipeline] starts one when nil.
	Receiver *ReceiverServer
	// DataDir holds the children's data; default a temporary directory that
	// Close removes.
	DataDir string
	Logger  *slog.Logger
}

// The backends of [PipelineOptions].Backend.
const (
	BackendPrometheus      = "prometheus"
	BackendVictoriaMetrics = "victoriametrics"
)

// ErrUnknownBackend reports a [PipelineOptions].Backend that is neither
// [BackendPrometheus] nor [BackendVictoriaMetrics].
var ErrUnknownBackend = errors.New("promflowtest: unknown pipeline backend")

// RunningPipeline is a running pipeline. Its URLs say where everything is.
type RunningPipeline struct {
	// WriteToken is PipelineOptions.WriteToken: send it as
	// Authorization: Bearer on state-changing requests when set.
	WriteToken      string
	MockURL         string
	PrometheusURL   string
	AlertmanagerURL string
	ServiceURL      string
	// VictoriaMetricsURL is the VictoriaMetrics child of
	// [BackendVictoriaMetrics], empty otherwise.
	VictoriaMetricsURL string
	// QueryURL is what service-metrics queries: VictoriaMetricsURL with
	// [BackendVictoriaMetrics], else PrometheusURL.
	QueryURL string

	Mock    *mockexporter.Registry
	Service *servicemetrics.Server
	// Client queries PrometheusURL; it is closed by Close.
	Client *promquery.Client
	// Receiver is PipelineOptions.Receiver (nil when none was given).
	Receiver *ReceiverServer

	log        *slog.Logger
	servers    []*http.Server
	serving    sync.WaitGroup
	pendingLns []net.Listener
	forwarders []*forwarder
	children   []child
	pool       *pgxpool.Pool
	tempDir    string
	closeOnce  sync.Once
	closeErr   error
	serveErrs  chan error
}

// child is a supervised child process of the pipeline.
type child struct {
	name string
	sup  *supervise.Supervisor[*Process]
}

// StartPipeline brings the pipeline up and returns once every component is
// ready; call Close to stop it. On error everything already started is
// stopped again. Tests use [Pipeline], which picks free ports and a
// database of the test's own and stops everything at cleanup.
func StartPipeline(ctx context.Context, cfg PipelineOptions) (p *RunningPipeline, err error) {
	cfg = withDefaults(cfg)
	if cfg.Backend != BackendPrometheus && cfg.Backend != BackendVictoriaMetrics {
		return nil, fmt.Errorf("%w %q: want %q or %q", ErrUnknownBackend, cfg.Backend, BackendPrometheus, BackendVictoriaMetrics)
	}
	// started is what to stop on error: a "return nil, err" below sets p
	// to nil before this deferred function runs.
	started := &RunningPipeline{WriteToken: cfg.WriteToken, log: cfg.Logger, serveErrs: make(chan error, 4)}
	p = started
	defer func() {
		if err != nil {
			_ = started.Close()
			p = nil
		}
	}()

	dataDir := cfg.DataDir
	if dataDir == "" {
		if dataDir, err = os.MkdirTemp("", "promflow-pipeline-"); err != nil {
			return nil, fmt.Errorf("promflowtest: pipeline: temp dir: %w", err)
		}
		p.tempDir = dataDir
	}

	// Listen first: Prometheus and Alertmanager need the real addresses.
	mockLns, err := listenAll(cfg.MockAddr)
	if err != nil {
		return nil, fmt.Errorf("promflowtest: pipeline: mock-metrics listen %s: %w", cfg.MockAddr, err)
	}
	// Until they are served, Close must close the listeners.
	p.pendingLns = mockLns
	svcLns, err := listenAll(cfg.ServiceAddr)
	if err != nil {
		return nil, fmt.Errorf("promflowtest: pipeline: service-metrics listen %s: %w", cfg.ServiceAddr, err)
	}
	p.pendingLns = append(p.pendingLns, svcLns...)
	mockLn, svcLn := mockLns[0], svcLns[0]
	p.MockURL = "http://" + mockLn.Addr().String()
	p.ServiceURL = "http://" + svcLn.Addr().String()

	cors, err := mockCORS(cfg.CORSOrigins)
	if err != nil {
		return nil, err
	}
	p.Receiver = cfg.Receiver
	p.Mock = mockexporter.New(mockexporter.Options{Logger: cfg.Logger})
	guarded := httpedge.Guard(p.Mock.Handler(), httpedge.GuardOptions{
		Token:   cfg.WriteToken,
		Origins: cors.Write,
		JSON:    mockexporter.JSONBody,
	})
	p.serve("mock-metrics", mockLns, httpedge.CORS(guarded, cors))

	p.AlertmanagerURL = cfg.AlertmanagerURL
	if p.AlertmanagerURL == "" {
		dir := filepath.Join(dataDir, "alertmanager")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("promflowtest: pipeline: %w", err)
		}
		amConfig, err := pipelineAlertmanagerConfig(cfg, p.ServiceURL+"/api/alertmanager/webhook")
		if err != nil {
			return nil, err
		}
		amOpts := AlertmanagerOptions{
			Addr:    loopbackIPv4(cfg.AlertmanagerAddr),
			DataDir: dir,
			Config:  amConfig,
		}
		am, err := p.supervise(ctx, "alertmanager", func(ctx context.Context) (*Process, error) {
			return StartAlertmanager(ctx, amOpts)
		})
		if err != nil {
			return nil, fmt.Errorf("promflowtest: pipeline: alertmanager: %w", err)
		}
		p.AlertmanagerURL = am.URL
		if err := p.forward(cfg.AlertmanagerAddr, am.Addr); err != nil {
			return nil, err
		}
	}

	var remoteWrite []string
	if cfg.Backend == BackendVictoriaMetrics {
		if err := p.startVictoriaMetrics(ctx, cfg, dataDir); err != nil {
			return nil, err
		}
		remoteWrite = []string{p.VictoriaMetricsURL + VictoriaMetricsWritePath}
	}

	p.PrometheusURL = cfg.PrometheusURL
	if p.PrometheusURL == "" {
		dir := filepath.Join(dataDir, "prometheus")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("promflowtest: pipeline: %w", err)
		}
		amAddr, err := hostPort(p.AlertmanagerURL)
		if err != nil {
			return nil, err
		}
		promAddr := loopbackIPv4(cfg.PrometheusAddr)
		promOpts := PrometheusOptions{
			Addr:               promAddr,
			DataDir:            dir,
			ScrapeInterval:     cfg.ScrapeInterval,
			EvaluationInterval: cfg.ScrapeInterval,
			ScrapeConfigs: []ScrapeConfig{
				{JobName: "mock-metrics", Targets: []string{mockLn.Addr().String()}, HonorLabels: true},
				{JobName: "service-metrics", Targets: []string{svcLn.Addr().String()}},
				{JobName: "prometheus", Targets: []string{promAddr}},
			},
			RuleFiles:       pipelineRules(cfg),
			Alertmanagers:   []string{amAddr},
			RemoteWrite:     remoteWrite,
			EnableLifecycle: cfg.PrometheusLifecycle,
			CORSOrigin:      LoopbackOrigins,
		}
		prom, err := p.supervise(ctx, "prometheus", func(ctx context.Context) (*Process, error) {
			return StartPrometheus(ctx, promOpts)
		})
		if err != nil {
			return nil, fmt.Errorf("promflowtest: pipeline: prometheus: %w", err)
		}
		p.PrometheusURL = prom.URL
		if err := p.forward(cfg.PrometheusAddr, prom.Addr); err != nil {
			return nil, err
		}
	}

	if p.Client, err = promquery.New(p.PrometheusURL, promquery.Options{}); err != nil {
		return nil, fmt.Errorf("promflowtest: pipeline: prometheus client: %w", err)
	}
	// pgxpool.New does not connect: a PostgreSQL that is down is
	// service-metrics' to wait for.
	p.pool, err = pgxpool.New(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("promflowtest: pipeline: database: %w", err)
	}
	p.QueryURL = p.PrometheusURL
	if p.VictoriaMetricsURL != "" {
		p.QueryURL = p.VictoriaMetricsURL
	}
	p.Service, err = servicemetrics.New(ctx, servicemetrics.Config{
		PrometheusURL:   p.QueryURL,
		AlertmanagerURL: p.AlertmanagerURL,
		Pool:            p.pool,
		PollInterval:    cfg.PollInterval,
		ExtraQueries:    MockQueries(),
		AllowedOrigins:  cfg.AllowedOrigins,
		CORSOrigins:     cfg.CORSOrigins,
		Demo:            cfg.Demo,
		WriteToken:      cfg.WriteToken,
		Logger:          cfg.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("promflowtest: pipeline: service-metrics: %w", err)
	}
	p.pendingLns = nil
	p.serve("service-metrics", svcLns, p.Service)
	return p, nil
}

// startVictoriaMetrics starts the supervised VictoriaMetrics child of
// [BackendVictoriaMetrics] and sets p.VictoriaMetricsURL.
func (p *RunningPipeline) startVictoriaMetrics(ctx context.Context, cfg PipelineOptions, dataDir string) error {
	dir := filepath.Join(dataDir, "victoria-metrics")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("promflowtest: pipeline: %w", err)
	}
	opts := VictoriaMetricsOptions{Addr: loopbackIPv4(cfg.VictoriaMetricsAddr), DataDir: dir}
	vm, err := p.supervise(ctx, "victoria-metrics", func(ctx context.Context) (*Process, error) {
		return StartVictoriaMetrics(ctx, opts)
	})
	if err != nil {
		return fmt.Errorf("promflowtest: pipeline: victoria-metrics: %w", err)
	}
	p.VictoriaMetricsURL = vm.URL
	return p.forward(cfg.VictoriaMetricsAddr, vm.Addr)
}

// Err returns a channel that receives the pipeline's unrecoverable
// problems: an in-process HTTP server (mock-metrics, service-metrics) that
// stops before Close, or a child process that exited and could not be
// started again (see [RunningPipeline.Process]). A child that exits is
// not one: it is restarted with backoff on the same address and data
// directory, its outage logged and shown in service-metrics' /ready, while
// the rest of the pipeline keeps serving. Neither is a PostgreSQL outage,
// which service-metrics rides out.
func (p *RunningPipeline) Err() <-chan error { return p.serveErrs }

// Process returns the running process of the child named "prometheus",
// "alertmanager" or "victoria-metrics", or nil when that child is external (PrometheusURL,
// AlertmanagerURL), down (between a crash and its restart) or stopped. It
// is a new *Process after each restart; a fault drill kills it with
// [Process.Kill] and waits for another.
func (p *RunningPipeline) Process(name string) *Process {
	for _, c := range p.children {
		if c.name == name {
			if proc, up := c.sup.Current(); up {
				return proc
			}
		}
	}
	return nil
}

// Restarts returns how many times the child named "prometheus" or
// "alertmanager" was restarted after it exited.
func (p *RunningPipeline) Restarts(name string) int {
	for _, c := range p.children {
		if c.name == name {
			return c.sup.Restarts()
		}
	}
	return 0
}

// childSupervision is the backoff of the pipeline's children: the
// supervise defaults (a package variable so that this package's tests can
// shorten it).
var childSupervision = supervise.Options{}

// supervise starts a child and keeps it running until Close.
func (p *RunningPipeline) supervise(ctx context.Context, name string, start func(context.Context) (*Process, error)) (*Process, error) {
	opts := childSupervision // the backoff
	opts.Name = name
	opts.Logger = p.log
	opts.Permanent = func(err error) bool { return errors.Is(err, ErrBinaryNotFound) }
	opts.ExitInfo = func(c supervise.Child) string { return c.(*Process).exitInfo() }
	opts.OnGiveUp = func(err error) { p.report(fmt.Errorf("promflowtest: pipeline: %w", err)) }
	sup, err := supervise.Start(ctx, start, opts)
	if err != nil {
		return nil, err
	}
	p.children = append(p.children, child{name: name, sup: sup})
	proc, _ := sup.Current()
	return proc, nil
}

// report sends err on Err unless one is already waiting there.
func (p *RunningPipeline) report(err error) {
	select {
	case p.serveErrs <- err:
	default:
	}
}

// serve serves h on every listener of lns with one http.Server.
func (p *RunningPipeline) serve(name string, lns []net.Listener, h http.Handler) {
	srv := httpedge.NewServer(h, httpedge.ServerOptions{Logger: p.log})
	p.servers = append(p.servers, srv)
	for _, ln := range lns {
		p.serving.Add(1)
		go func() {
			defer p.serving.Done()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				p.log.Error("server stopped", "component", name, "err", err)
				p.report(fmt.Errorf("promflowtest: pipeline: %s: %w", name, err))
			}
		}()
	}
}

// forward makes a child started on the IPv4 loopback reachable on [::1]
// too when it was asked to listen on "localhost".
func (p *RunningPipeline) forward(asked, v4addr string) error {
	if !isLocalhost(asked) {
		return nil
	}
	f, err := forwardIPv6(v4addr)
	if err != nil {
		return fmt.Errorf("promflowtest: pipeline: %w", err)
	}
	if f != nil {
		p.forwarders = append(p.forwarders, f)
	}
	return nil
}

// Close is Shutdown without waiting: WebSocket clients and HTTP
// connections are cut at once (the children still get SIGTERM).
func (p *RunningPipeline) Close() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := p.Shutdown(ctx)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// Shutdown stops the HTTP servers gracefully (WebSocket clients get 1001),
// service-metrics' background work and the child processes, closes the
// database pool and removes temporary data. If ctx ends first, what is left
// is closed at once and ctx's error is part of the result. It is
// idempotent, and so is Close.
func (p *RunningPipeline) Shutdown(ctx context.Context) error {
	p.closeOnce.Do(func() {
		var errs []error
		if p.Service != nil {
			errs = append(errs, p.Service.Shutdown(ctx))
		}
		for _, ln := range p.pendingLns {
			_ = ln.Close()
		}
		for _, f := range p.forwarders {
			_ = f.Close()
		}
		for _, s := range p.servers {
			if err := s.Shutdown(ctx); err != nil {
				errs = append(errs, err)
				_ = s.Close()
			}
		}
		p.serving.Wait()
		for i := len(p.children) - 1; i >= 0; i-- {
			errs = append(errs, p.children[i].sup.Stop())
		}
		if p.pool != nil {
			p.pool.Close()
		}
		if p.Client != nil {
			_ = p.Client.Close()
		}
		if p.tempDir != "" {
			errs = append(errs, os.RemoveAll(p.tempDir))
		}
		p.closeErr = errors.Join(errs...)
	})
	return p.closeErr
}

func withDefaults(cfg PipelineOptions) PipelineOptions {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&cfg.MockAddr, "localhost:8082")
	def(&cfg.ServiceAddr, "localhost:8005")
	def(&cfg.PrometheusAddr, "localhost:9090")
	def(&cfg.AlertmanagerAddr, "localhost:9093")
	def(&cfg.VictoriaMetricsAddr, "localhost:8428")
	def(&cfg.Backend, BackendPrometheus)
	def(&cfg.DatabaseURL, DefaultDatabaseURL)
	if cfg.ScrapeInterval <= 0 {
		cfg.ScrapeInterval = 5 * time.Second
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return cfg
}

func hostPort(rawURL string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("promflowtest: pipeline: not a URL with a host: %q", rawURL)
	}
	return u.Host, nil
}

// mockCORS is mock-metrics' CORS policy: reads from the origins given
// ("*" by default, as the original), writes from those listed by name.
func mockCORS(origins []string) (httpedge.CORSOptions, error) {
	if origins == nil {
		origins = []string{"*"}
	}
	pol, err := httpedge.ParseOrigins(origins)
	if err != nil {
		return httpedge.CORSOptions{}, fmt.Errorf("promflowtest: pipeline: CORSOrigins: %w", err)
	}
	return httpedge.CORSOptions{Read: pol, Write: pol}, nil
}

// pipelineRules are the rule files of the pipeline's Prometheus.
func pipelineRules(cfg PipelineOptions) map[string]string {
	files := map[string]string{}
	if !cfg.OmitShippedRules {
		files["mock-alerts.yml"] = AlertRules
	}
	if cfg.Rules != "" {
		files["user-rules.yml"] = cfg.Rules
	}
	return files
}

// pipelineAlertmanagerConfig is cfg.AlertmanagerConfig with its
// placeholders replaced, or the default configuration.
func pipelineAlertmanagerConfig(cfg PipelineOptions, hook string) (string, error) {
	if cfg.AlertmanagerConfig == "" {
		hooks := []webhook{{url: hook, token: cfg.WriteToken}}
		if cfg.Receiver != nil {
			hooks = append(hooks, webhook{url: cfg.Receiver.URL()})
		}
		b, err := defaultAlertmanagerConfig(hooks, 0, time.Second, time.Hour)
		return string(b), err
	}
	conf := strings.ReplaceAll(cfg.AlertmanagerConfig, WebhookPlaceholder, hook)
	conf = strings.ReplaceAll(conf, TokenPlaceholder, cfg.WriteToken)
	if strings.Contains(conf, ReceiverPlaceholder) {
		if cfg.Receiver == nil {
			return "", fmt.Errorf("promflowtest: pipeline: AlertmanagerConfig uses %s but PipelineOptions.Receiver is nil", ReceiverPlaceholder)
		}
		conf = strings.ReplaceAll(conf, ReceiverPlaceholder, cfg.Receiver.URL())
	}
	return conf, nil
}
