// Command servicemetrics is the seed's service-metrics service on :8005:
// incidents REST API and Alertmanager webhook on PostgreSQL, a WebSocket
// broadcast of Prometheus query results and incident events on "/" and
// "/ws", and a live dashboard at "/".
//
// Configuration: flags, each with an environment fallback.
//
//	-addr           PORT (as ":PORT")   listen address, default :8005
//	-prometheus-url PROMETHEUS_URL      default http://127.0.0.1:9090
//	-database-url   DATABASE_URL        default postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable
//	-poll-interval  POLL_INTERVAL       Go duration or seconds, default 10s
//	-allowed-origins ALLOWED_ORIGINS    comma-separated WebSocket origin hosts
//
// SIGINT or SIGTERM shuts it down gracefully.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/promflow/promflow/internal/servicemetrics"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if err := run(log, os.Args[1:]); err != nil {
		log.Error("service-metrics failed", "err", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger, args []string) error {
	fs := flag.NewFlagSet("servicemetrics", flag.ContinueOnError)
	addr := fs.String("addr", portAddr(os.Getenv("PORT"), ":8005"), "listen address (env PORT)")
	promURL := fs.String("prometheus-url", envOr("PROMETHEUS_URL", "http://127.0.0.1:9090"), "Prometheus base URL (env PROMETHEUS_URL)")
	dbURL := fs.String("database-url", envOr("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"), "PostgreSQL URL (env DATABASE_URL)")
	poll := fs.String("poll-interval", envOr("POLL_INTERVAL", "10s"), "Prometheus poll interval, Go duration or seconds (env POLL_INTERVAL)")
	origins := fs.String("allowed-origins", os.Getenv("ALLOWED_ORIGINS"), "comma-separated extra WebSocket origin hosts (env ALLOWED_ORIGINS)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	interval, err := parseInterval(*poll)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	pool, err := pgxpool.New(ctx, *dbURL)
	if err != nil {
		return fmt.Errorf("database: %w", err)
	}
	defer pool.Close()

	cfg := servicemetrics.Config{PrometheusURL: *promURL, Pool: pool, PollInterval: interval, Logger: log}
	if *origins != "" {
		cfg.AllowedOrigins = strings.Split(*origins, ",")
	}
	svc, err := servicemetrics.New(ctx, cfg)
	if err != nil {
		return err
	}
	srv := &http.Server{Addr: *addr, Handler: svc.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info("service-metrics listening", "addr", *addr, "prometheus", *promURL, "poll_interval", interval.String())

	select {
	case err := <-errc:
		_ = svc.Close(context.Background())
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Close the hub first: http.Server.Shutdown does not wait for hijacked
	// WebSocket connections.
	return errors.Join(svc.Close(sctx), srv.Shutdown(sctx))
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// portAddr turns the seed's PORT variable (a bare port) into a listen address.
func portAddr(port, def string) string {
	if port == "" {
		return def
	}
	if strings.Contains(port, ":") {
		return port
	}
	return ":" + port
}

// parseInterval accepts a Go duration ("10s") or a number of seconds ("10"),
// as the original's POLL_INTERVAL.
func parseInterval(s string) (time.Duration, error) {
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return d, nil
	}
	if n, err := strconv.ParseFloat(s, 64); err == nil && n > 0 && n < 1e6 {
		return time.Duration(n * float64(time.Second)), nil
	}
	return 0, fmt.Errorf("poll interval %q: want a positive duration such as 10s", s)
}
