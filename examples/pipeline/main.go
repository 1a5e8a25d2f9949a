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
// -scrape-interval (SCRAPE_INTERVAL), -poll-interval (POLL_INTERVAL).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/promflow/promflow/internal/localserver"
	"github.com/promflow/promflow/internal/pipeline"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(log, os.Args[1:]); err != nil {
		var missing *localserver.MissingBinaryError
		if errors.As(err, &missing) {
			fmt.Fprintln(os.Stderr, missing.Error())
		} else {
			log.Error("pipeline failed", "err", err)
		}
		os.Exit(1)
	}
}

func run(log *slog.Logger, args []string) error {
	fs := flag.NewFlagSet("pipeline", flag.ContinueOnError)
	var cfg pipeline.Config
	fs.StringVar(&cfg.MockAddr, "mock-addr", envOr("MOCK_ADDR", "127.0.0.1:8082"), "mock-metrics listen address")
	fs.StringVar(&cfg.ServiceAddr, "service-addr", envOr("SERVICE_ADDR", "127.0.0.1:8005"), "service-metrics listen address")
	fs.StringVar(&cfg.PrometheusURL, "prometheus-url", os.Getenv("PROMETHEUS_URL"), "use this Prometheus instead of starting one")
	fs.StringVar(&cfg.PrometheusAddr, "prometheus-addr", envOr("PROMETHEUS_ADDR", "127.0.0.1:9090"), "listen address of the Prometheus started here")
	fs.StringVar(&cfg.AlertmanagerURL, "alertmanager-url", os.Getenv("ALERTMANAGER_URL"), "use this Alertmanager instead of starting one")
	fs.StringVar(&cfg.AlertmanagerAddr, "alertmanager-addr", envOr("ALERTMANAGER_ADDR", "127.0.0.1:9093"), "listen address of the Alertmanager started here")
	fs.StringVar(&cfg.DatabaseURL, "database-url", envOr("DATABASE_URL", pipeline.DefaultDatabaseURL), "PostgreSQL URL")
	scrape := fs.Duration("scrape-interval", envDuration("SCRAPE_INTERVAL", 5*time.Second), "Prometheus scrape and rule evaluation interval")
	poll := fs.Duration("poll-interval", envDuration("POLL_INTERVAL", 10*time.Second), "service-metrics poll interval")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg.ScrapeInterval, cfg.PollInterval, cfg.Logger = *scrape, *poll, log

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	p, err := pipeline.Start(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Printf(`promflow pipeline is up:
  mock-metrics     %[1]s   (POST %[1]s/simulate/memory-usage/95)
  prometheus       %[2]s
  alertmanager     %[3]s
  service-metrics  %[4]s   (dashboard; WebSocket on / and /ws)
  incidents        %[4]s/api/metrics/incidents/by-service
Press Ctrl-C to stop.
`, p.MockURL, p.PrometheusURL, p.AlertmanagerURL, p.ServiceURL)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-p.Err():
	}
	log.Info("stopping pipeline")
	sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return errors.Join(runErr, p.Close(sctx))
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func envDuration(key string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(key)); err == nil && d > 0 {
		return d
	}
	return def
}
