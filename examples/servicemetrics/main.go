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
//	-listen-database-url LISTEN_DATABASE_URL  direct PostgreSQL URL for LISTEN and migrations when
//	                                    DATABASE_URL is PgBouncer (transaction pooling; add
//	                                    default_query_exec_mode=cache_describe to DATABASE_URL)
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
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/promflow/promflow/httpedge"
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
	if err := run(ctx, os.Args[1:], os.Getenv, log, nil); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		log.Error("service-metrics failed", "err", err)
		stop()
		os.Exit(1)
	}
}

// run serves until ctx ends. getenv supplies the environment fallbacks; the
// listening address is sent on ready (if not nil) once the server accepts
// connections.
func run(ctx context.Context, args []string, getenv func(string) string, log *slog.Logger, ready chan<- string) error {
	envOr := func(key, def string) string {
		if v := getenv(key); v != "" {
			return v
		}
		return def
	}
	fs := flag.NewFlagSet("servicemetrics", flag.ContinueOnError)
	fs.SetOutput(usageOutput)
	addr := fs.String("addr", portAddr(getenv("PORT"), ":8005"), "listen address (env PORT)")
	promURL := fs.String("prometheus-url", envOr("PROMETHEUS_URL", "http://127.0.0.1:9090"), "Prometheus base URL (env PROMETHEUS_URL)")
	dbURL := fs.String("database-url", envOr("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"), "PostgreSQL URL (env DATABASE_URL)")
	listenURL := fs.String("listen-database-url", getenv("LISTEN_DATABASE_URL"), "direct PostgreSQL URL for the change feed's LISTEN and the migration, when -database-url goes through PgBouncer in transaction pooling (give that one default_query_exec_mode=cache_describe); default: -database-url (env LISTEN_DATABASE_URL)")
	poll := fs.String("poll-interval", envOr("POLL_INTERVAL", "10s"), "Prometheus poll interval: a Go duration (10s), or bare milliseconds as the original's POLL_INTERVAL=10000 (env POLL_INTERVAL)")
	origins := fs.String("allowed-origins", envOr("ALLOWED_ORIGINS", strings.Join(httpedge.LocalDevOrigins, ",")), "comma-separated origins whose pages may open the WebSocket, besides same-origin ones (http://localhost:*, https://app.example.com); * allows any (env ALLOWED_ORIGINS)")
	corsOrigins := fs.String("cors-origins", envOr("CORS_ORIGINS", "*"), "comma-separated origins whose pages may read the REST API (CORS); cross-origin writes only for origins listed by name (env CORS_ORIGINS)")
	writeToken := fs.String("write-token", getenv("WRITE_TOKEN"), "bearer token required on every state-changing route; without it only loopback clients may write (env WRITE_TOKEN)")
	webhookToken := fs.String("webhook-token", getenv("WEBHOOK_TOKEN"), "bearer token also accepted on the Alertmanager webhook (env WEBHOOK_TOKEN)")
	demo := fs.Bool("demo", envBool(getenv("DEMO")), "load the seed report's demo incidents (5 services, 9 incidents; idempotent) (env DEMO)")
	amURL := fs.String("alertmanager-url", getenv("ALERTMANAGER_URL"), "Alertmanager base URL, reported by /ready (env ALERTMANAGER_URL)")
	wsCompression := fs.Bool("ws-compression", envBool(getenv("WS_COMPRESSION")), "negotiate permessage-deflate with WebSocket clients that offer it, each message compressed once for all of them (env WS_COMPRESSION)")
	maxConns := fs.Int("max-conns", envInt(getenv, "MAX_CONNS", httpedge.DefaultMaxConns), "most HTTP connections held besides WebSockets; the longest-idle one makes room for a new one (env MAX_CONNS)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err // the usage is printed; main exits 0
		}
		return fmt.Errorf("flags: %w", err)
	}
	interval, err := servicemetrics.ParseInterval(*poll)
	if err != nil {
		return fmt.Errorf("poll %w", err)
	}

	pool, err := pgxpool.New(ctx, *dbURL)
	if err != nil {
		return fmt.Errorf("database: %w", err)
	}
	defer pool.Close()

	cfg := servicemetrics.Config{
		PrometheusURL: *promURL, Pool: pool, ListenURL: *listenURL, PollInterval: interval, Logger: log,
		WriteToken: *writeToken, WebhookToken: *webhookToken,
		Demo: *demo, AlertmanagerURL: *amURL, Compression: *wsCompression,
		// Empty lists (not nil): the flags say exactly what is allowed.
		AllowedOrigins: append([]string{}, httpedge.SplitList(*origins)...),
		CORSOrigins:    append([]string{}, httpedge.SplitList(*corsOrigins)...),
	}
	svc, err := servicemetrics.New(ctx, cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		_ = svc.Close()
		return fmt.Errorf("listen: %w", err)
	}
	srv := httpedge.NewServer(svc, httpedge.ServerOptions{MaxConns: *maxConns, Logger: log})
	httpedge.WarnIfOpen(log, ln, *writeToken)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("service-metrics listening", "addr", ln.Addr().String(), "prometheus", *promURL, "poll_interval", interval.String())
	if ready != nil {
		ready <- ln.Addr().String()
	}

	select {
	case err := <-errc:
		_ = svc.Close()
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Close the hub first: http.Server.Shutdown does not wait for hijacked
	// WebSocket connections.
	return errors.Join(svc.Shutdown(sctx), srv.Shutdown(sctx))
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

// envInt reads an integer environment variable, or returns def.
func envInt(getenv func(string) string, key string, def int) int {
	if n, err := strconv.Atoi(getenv(key)); err == nil {
		return n
	}
	return def
}

// envBool reads a boolean environment value ("1", "true", ...); anything
// else is false.
func envBool(v string) bool {
	b, _ := strconv.ParseBool(v)
	return b
}
