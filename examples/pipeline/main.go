// Command pipeline brings up the whole promflow flow with one command:
//
//	mock-metrics :8082 → Prometheus :9090 (alert rules) → Alertmanager :9093
//	  → service-metrics :8005 (incidents in PostgreSQL, WebSocket, dashboard)
//
// Prometheus and Alertmanager are started as child processes (Debian
// packages prometheus and prometheus-alertmanager) with generated configs in
// a temporary directory, unless -prometheus-url / -alertmanager-url point at
// running ones. Ctrl-C stops every child and removes the temporary data.
//
// Flags (environment fallback in parentheses): -mock-addr (MOCK_ADDR),
// -service-addr (SERVICE_ADDR), -prometheus-url (PROMETHEUS_URL),
// -prometheus-addr (PROMETHEUS_ADDR), -alertmanager-url (ALERTMANAGER_URL),
// -alertmanager-addr (ALERTMANAGER_ADDR), -database-url (DATABASE_URL),
// -scrape-interval (SCRAPE_INTERVAL), -poll-interval (POLL_INTERVAL),
// -prometheus-lifecycle (PROMETHEUS_LIFECYCLE=true), -backend (BACKEND),
// -victoriametrics-addr (VICTORIAMETRICS_ADDR).
//
// With -backend victoriametrics a VictoriaMetrics child (Debian package
// victoria-metrics, :8428) is started too: Prometheus keeps scraping and
// evaluating the alert rules and remote-writes everything to it, and
// service-metrics queries it (promflowtest's package doc draws the
// topology).
//
// A child (Prometheus, Alertmanager) that exits is restarted with backoff
// on the same address and data directory, its outage logged and shown in
// service-metrics' /ready; PostgreSQL may be down at start or go away (the
// incidents API answers 503 meanwhile). Only Ctrl-C or SIGTERM stop the
// pipeline, or a problem it cannot recover from (a child that cannot be
// started again, an in-process server that fails), which exits 1.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/promflow/promflow/httpedge"
	"github.com/promflow/promflow/promflowtest"
	"github.com/promflow/promflow/servicemetrics"
)

// usageOutput is where -h and flag errors print the usage.
var usageOutput io.Writer = os.Stderr

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// After the first signal, a second one kills at once (the default
	// handling) instead of waiting for the graceful shutdown.
	context.AfterFunc(ctx, stop)
	if err := run(ctx, os.Args[1:], os.Getenv, log, os.Stdout, nil); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		var missing *promflowtest.MissingBinaryError
		if errors.As(err, &missing) {
			fmt.Fprintln(os.Stderr, missing.Error())
		} else {
			log.Error("pipeline failed", "err", err)
		}
		stop()
		os.Exit(1)
	}
}

// run brings the pipeline up, prints where everything is on out, sends the
// running pipeline on ready (if not nil) and stops it when ctx ends.
func run(ctx context.Context, args []string, getenv func(string) string, log *slog.Logger, out io.Writer, ready chan<- *promflowtest.RunningPipeline) error {
	envOr := func(key, def string) string {
		if v := getenv(key); v != "" {
			return v
		}
		return def
	}
	var envErr error
	envDuration := func(key string, def time.Duration) time.Duration {
		v := getenv(key)
		if v == "" {
			return def
		}
		d, err := servicemetrics.ParseInterval(v)
		if err != nil {
			envErr = errors.Join(envErr, fmt.Errorf("environment %s: %w", key, err))
			return def
		}
		return d
	}
	fs := flag.NewFlagSet("pipeline", flag.ContinueOnError)
	fs.SetOutput(usageOutput)
	var cfg promflowtest.PipelineOptions
	fs.StringVar(&cfg.MockAddr, "mock-addr", envOr("MOCK_ADDR", "localhost:8082"), "mock-metrics listen address (localhost: both 127.0.0.1 and [::1])")
	fs.StringVar(&cfg.ServiceAddr, "service-addr", envOr("SERVICE_ADDR", "localhost:8005"), "service-metrics listen address (localhost: both 127.0.0.1 and [::1])")
	fs.StringVar(&cfg.PrometheusURL, "prometheus-url", getenv("PROMETHEUS_URL"), "use this Prometheus instead of starting one")
	fs.StringVar(&cfg.PrometheusAddr, "prometheus-addr", envOr("PROMETHEUS_ADDR", "localhost:9090"), "listen address of the Prometheus started here")
	fs.StringVar(&cfg.AlertmanagerURL, "alertmanager-url", getenv("ALERTMANAGER_URL"), "use this Alertmanager instead of starting one")
	fs.StringVar(&cfg.AlertmanagerAddr, "alertmanager-addr", envOr("ALERTMANAGER_ADDR", "localhost:9093"), "listen address of the Alertmanager started here")
	fs.StringVar(&cfg.Backend, "backend", envOr("BACKEND", promflowtest.BackendPrometheus), "what service-metrics queries: prometheus (the Prometheus that scrapes), or victoriametrics (a VictoriaMetrics started here, Debian package victoria-metrics, that Prometheus remote-writes to; Prometheus keeps scraping and evaluating the alert rules) (env BACKEND)")
	fs.StringVar(&cfg.VictoriaMetricsAddr, "victoriametrics-addr", envOr("VICTORIAMETRICS_ADDR", "localhost:8428"), "listen address of the VictoriaMetrics started with -backend victoriametrics")
	fs.BoolVar(&cfg.PrometheusLifecycle, "prometheus-lifecycle", getenv("PROMETHEUS_LIFECYCLE") == "true", "start Prometheus with its lifecycle and admin APIs (POST /-/quit, /-/reload, TSDB admin); off by default since any client reaching its port could use them (env PROMETHEUS_LIFECYCLE=true)")
	fs.StringVar(&cfg.DatabaseURL, "database-url", envOr("DATABASE_URL", promflowtest.DefaultDatabaseURL), "PostgreSQL URL")
	scrape := intervalFlag(fs, "scrape-interval", envDuration("SCRAPE_INTERVAL", 5*time.Second), "Prometheus scrape and rule evaluation interval: a Go duration (5s), or bare milliseconds (5000) (env SCRAPE_INTERVAL)")
	poll := intervalFlag(fs, "poll-interval", envDuration("POLL_INTERVAL", 10*time.Second), "service-metrics poll interval: a Go duration (10s), or bare milliseconds as the original's POLL_INTERVAL=10000 (env POLL_INTERVAL)")
	wsOrigins := fs.String("allowed-origins", envOr("ALLOWED_ORIGINS", strings.Join(httpedge.LocalDevOrigins, ",")), "comma-separated origins whose pages may open the WebSocket, besides same-origin ones; * allows any (env ALLOWED_ORIGINS)")
	corsOrigins := fs.String("cors-origins", envOr("CORS_ORIGINS", "*"), "comma-separated origins whose pages may read the REST APIs (CORS); writes only for origins listed by name (env CORS_ORIGINS)")
	fs.BoolVar(&cfg.Demo, "demo", envBool(getenv("DEMO")), "load the seed report's demo incidents (5 services, 9 incidents; idempotent) (env DEMO)")
	fs.StringVar(&cfg.WriteToken, "write-token", getenv("WRITE_TOKEN"), "bearer token required on every state-changing route of mock-metrics and service-metrics (Alertmanager's webhook sends it); without it only loopback clients may write (env WRITE_TOKEN)")
	e2e := addE2EFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err // the usage is printed; main exits 0
		}
		return fmt.Errorf("flags: %w", err)
	}
	if envErr != nil {
		return envErr
	}
	if *scrape <= 0 || *poll <= 0 {
		return fmt.Errorf("flags: -scrape-interval and -poll-interval must be positive")
	}
	cfg.ScrapeInterval, cfg.PollInterval, cfg.Logger = *scrape, *poll, log
	cfg.AllowedOrigins, cfg.CORSOrigins = httpedge.SplitList(*wsOrigins), httpedge.SplitList(*corsOrigins)
	if cfg.AllowedOrigins == nil {
		cfg.AllowedOrigins = []string{} // none besides same-origin
	}
	if cfg.CORSOrigins == nil {
		cfg.CORSOrigins = []string{}
	}
	if e2e.asked() {
		return runE2E(ctx, e2e, cfg, log, out)
	}

	p, err := promflowtest.StartPipeline(ctx, cfg)
	if err != nil {
		return err
	}
	vmLine := ""
	if p.VictoriaMetricsURL != "" {
		vmLine = fmt.Sprintf("\n  victoriametrics  %s   (Prometheus remote-writes here; service-metrics queries it)", p.VictoriaMetricsURL)
	}
	fmt.Fprintf(out, `promflow pipeline is up:
  mock-metrics     %[1]s   (POST %[1]s/simulate/memory-usage/95)
  prometheus       %[2]s%[5]s
  alertmanager     %[3]s
  service-metrics  %[4]s   (dashboard; WebSocket on / and /ws)
  incidents        %[4]s/api/metrics/incidents/by-service
Press Ctrl-C to stop.
`, p.MockURL, p.PrometheusURL, p.AlertmanagerURL, p.ServiceURL, vmLine)
	if cfg.WriteToken != "" {
		fmt.Fprintf(out, "  write token      %s   (send Authorization: Bearer <token> on state-changing requests)\n", cfg.WriteToken)
	}
	if ready != nil {
		ready <- p
	}

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-p.Err():
	}
	log.Info("stopping pipeline")
	sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return errors.Join(runErr, p.Shutdown(sctx))
}

// intervalFlag defines a flag read with servicemetrics.ParseInterval.
func intervalFlag(fs *flag.FlagSet, name string, def time.Duration, usage string) *time.Duration {
	d := def
	fs.Func(name, usage+" (default "+def.String()+")", func(s string) error {
		v, err := servicemetrics.ParseInterval(s)
		if err != nil {
			return err
		}
		d = v
		return nil
	})
	return &d
}

// envBool reads a boolean environment value ("1", "true", ...); anything
// else is false.
func envBool(v string) bool {
	b, _ := strconv.ParseBool(v)
	return b
}
