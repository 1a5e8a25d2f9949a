//go:build linux

package servicemetrics_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/promflow/promflow/httpedge"
	"github.com/promflow/promflow/promflowtest"
	"github.com/promflow/promflow/servicemetrics"
)

// The server mode of this test binary (BenchmarkServiceFanout's
// "promflow" server runs in a child process, so that its CPU time and
// memory are its own): fanoutServerEnv names the address to listen on,
// the other two say where Prometheus and the database are.
const (
	fanoutServerEnv = "SERVICEMETRICS_BENCH_SERVER"
	fanoutPromEnv   = "SERVICEMETRICS_BENCH_PROMETHEUS_URL"
	fanoutDBEnv     = "SERVICEMETRICS_BENCH_DATABASE_URL"
	fanoutPollEnv   = "SERVICEMETRICS_BENCH_POLL"
)

// init turns the binary into the benchmark's server before any test runs
// (TestMain belongs to server_test.go).
func init() {
	if addr := os.Getenv(fanoutServerEnv); addr != "" {
		os.Exit(runFanoutServer(addr))
	}
}

// runFanoutServer serves a service-metrics as the pipeline composes it
// (the seed's queries plus promflowtest.MockQueries) on addr, says
// "listening ADDR" on stdout, and stops when stdin closes.
func runFanoutServer(addr string) int {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "fanout server:", err)
		return 1
	}
	poll, err := time.ParseDuration(os.Getenv(fanoutPollEnv))
	if err != nil {
		return fail(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pool, err := pgxpool.New(ctx, os.Getenv(fanoutDBEnv))
	if err != nil {
		return fail(err)
	}
	defer pool.Close()
	svc, err := servicemetrics.New(ctx, servicemetrics.Config{
		PrometheusURL: os.Getenv(fanoutPromEnv),
		Pool:          pool,
		PollInterval:  poll,
		ExtraQueries:  promflowtest.MockQueries(),
		Logger:        log,
	})
	if err != nil {
		return fail(err)
	}
	defer svc.Close()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fail(err)
	}
	srv := httpedge.NewServer(svc, httpedge.ServerOptions{Logger: log})
	defer srv.Close()
	go func() { _ = srv.Serve(ln) }()
	fmt.Println("listening", ln.Addr().String())
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}
