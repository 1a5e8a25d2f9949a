// Command mockmetrics is the mock-metrics service of the promflow pipeline: a
// simulated Prometheus exporter on :8082 with the original service's
// /health, /metrics and POST /simulate/... routes, plus the mockexporter
// JSON control API under /api/v1/ (series, scenarios, faults, reset).
//
// Usage:
//
//	go run ./examples/mockmetrics [-addr :8082] [-scenario file.yaml]
//
// The listen address comes from -addr, else from the PORT environment
// variable, else :8082. -scenario starts a scenario (JSON or YAML, see
// mockexporter.Scenario) at boot. -family (repeatable) declares a
// generated family for load tests, a JSON mockexporter.FamilyTemplate such
// as {"name":"app_up","labels":["pod=pod-{0..999}"],"churn":{"share":0.1,"interval":"1m"}}.
// -remote-write-url pushes every series to a Remote Write endpoint every
// -remote-write-interval (15s). Logs are structured (log/slog) on stderr;
// SIGINT or SIGTERM shut the server down gracefully.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/promflow/promflow/httpedge"
	"github.com/promflow/promflow/mockexporter"
)

// usageOutput is where -h and flag errors print the usage.
var usageOutput io.Writer = os.Stderr

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// After the first signal, a second one kills at once (the default
	// handling) instead of waiting for the graceful shutdown.
	context.AfterFunc(ctx, stop)
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(ctx, os.Args[1:], os.Getenv, logger, nil); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		logger.Error("mockmetrics: exiting", "err", err)
		os.Exit(1)
	}
}

// testHookHandler, when set by a test, wraps the served handler.
var testHookHandler func(http.Handler) http.Handler

// run serves until ctx is done. If ready is not nil it receives the bound
// address once the server listens.
func run(ctx context.Context, args []string, getenv func(string) string, logger *slog.Logger, ready chan<- string) error {
	fs := flag.NewFlagSet("mockmetrics", flag.ContinueOnError)
	fs.SetOutput(usageOutput)
	defaultAddr := ":8082"
	if p := getenv("PORT"); p != "" {
		defaultAddr = ":" + p
	}
	addr := fs.String("addr", defaultAddr, "listen address (default :8082, or :$PORT)")
	scenarioFile := fs.String("scenario", "", "scenario file (JSON or YAML) to start at boot")
	corsOrigins := fs.String("cors-origins", envOr(getenv, "CORS_ORIGINS", "*"), "comma-separated origins whose pages may read mock-metrics (CORS); cross-origin writes only for origins listed by name (env CORS_ORIGINS)")
	writeToken := fs.String("write-token", getenv("WRITE_TOKEN"), "bearer token required on every state-changing route (/simulate, the control API, faults, reset); without it only loopback clients may write (env WRITE_TOKEN)")
	maxConns := fs.Int("max-conns", httpedge.DefaultMaxConns, "most HTTP connections held; the longest-idle one makes room for a new one")
	applyBudgets := addBudgetFlags(fs, getenv) // -max-bytes, -max-exposition-bytes, -max-series, -max-buckets, -max-labels, -max-label-value-bytes
	declareFamilies := addFamilyFlags(fs)      // -family, repeatable
	startRemoteWrite := addRemoteWriteFlags(fs, getenv)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err // the usage is printed; main exits 0
		}
		return fmt.Errorf("flags: %w", err)
	}

	readers, err := httpedge.ParseOrigins(httpedge.SplitList(*corsOrigins))
	if err != nil {
		return fmt.Errorf("flags: -cors-origins: %w", err)
	}
	opts := mockexporter.Options{Logger: logger}
	if err := applyBudgets(&opts); err != nil {
		return fmt.Errorf("flags: %w", err)
	}
	reg := mockexporter.New(opts)
	if err := declareFamilies(reg); err != nil {
		return fmt.Errorf("flags: %w", err)
	}
	stopRemoteWrite, err := startRemoteWrite(ctx, reg, logger)
	if err != nil {
		return fmt.Errorf("flags: %w", err)
	}
	defer stopRemoteWrite()
	if *scenarioFile != "" {
		data, err := os.ReadFile(*scenarioFile)
		if err != nil {
			return fmt.Errorf("scenario: %w", err)
		}
		sc, err := mockexporter.ParseScenario(data)
		if err != nil {
			return fmt.Errorf("scenario %s: %w", *scenarioFile, err)
		}
		info, err := reg.StartScenario(sc)
		if err != nil {
			return fmt.Errorf("scenario %s: %w", *scenarioFile, err)
		}
		logger.Info("mockmetrics: scenario started", "id", info.ID, "name", info.Name)
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	// Requests see a context that ends when shutdown begins, so a /metrics
	// held back by an injected delay fault does not hold up the shutdown.
	baseCtx, cancelBase := context.WithCancel(context.Background())
	defer cancelBase()
	guarded := httpedge.Guard(reg.Handler(), httpedge.GuardOptions{
		Token: *writeToken, Origins: readers,
		// The control API takes JSON; /simulate routes take no body.
		JSON: mockexporter.JSONBody,
	})
	handler := httpedge.CORS(guarded, httpedge.CORSOptions{Read: readers, Write: readers})
	if testHookHandler != nil {
		handler = testHookHandler(handler)
	}
	srv := httpedge.NewServer(handler, httpedge.ServerOptions{MaxConns: *maxConns, Logger: logger})
	srv.BaseContext = func(net.Listener) context.Context { return baseCtx }
	httpedge.WarnIfOpen(logger, ln, *writeToken)
	srv.RegisterOnShutdown(cancelBase)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	logger.Info("mockmetrics: listening", "addr", ln.Addr().String(),
		"health", "/health", "metrics", "/metrics", "simulate", "POST /simulate/...", "api", "/api/v1/")
	if ready != nil {
		ready <- ln.Addr().String()
	}

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("mockmetrics: shutting down")
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	logger.Info("mockmetrics: stopped")
	return nil
}

// envOr returns the environment value of key, or def when it is unset.
func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}
