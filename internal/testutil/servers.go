package testutil

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/promflow/promflow/internal/localserver"
)

// PrometheusOptions configures [Prometheus]. The zero value starts a
// Prometheus with no scrape targets, a 1 s scrape and evaluation interval.
type PrometheusOptions = localserver.PrometheusConfig

// ScrapeConfig is one scrape job of [PrometheusOptions].
type ScrapeConfig = localserver.ScrapeConfig

// Server is a real server process started for a test.
type Server struct {
	*localserver.Process
	t       testing.TB
	restart func(context.Context) (*localserver.Process, error)
}

// Restart stops the server (if still running) and starts it again on the same
// address with the same data directory, e.g. to test reconnection.
func (s *Server) Restart() {
	s.t.Helper()
	_ = s.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p, err := s.restart(ctx)
	if err != nil {
		s.t.Fatalf("testutil: restart %s: %v", s.Name, err)
	}
	s.Process = p
}

// Prometheus starts a real Prometheus (Debian package prometheus) on a free
// port with a generated config and a temporary data directory. It is stopped
// and removed at cleanup; its log is printed if the test failed.
func Prometheus(t testing.TB, opts PrometheusOptions) *Server {
	t.Helper()
	if opts.DataDir == "" {
		opts.DataDir = t.TempDir()
	}
	// Fix the address now so that Restart comes back on the same one.
	if opts.Addr == "" {
		opts.Addr = freeAddr(t)
	}
	return startServer(t, func(ctx context.Context) (*localserver.Process, error) {
		return localserver.StartPrometheus(ctx, opts)
	})
}

// AlertmanagerOptions configures [Alertmanager]; see localserver.AlertmanagerConfig.
type AlertmanagerOptions = localserver.AlertmanagerConfig

// Alertmanager starts a real Alertmanager (Debian package
// prometheus-alertmanager) on a free port, clustering off, sending every
// notification to opts.WebhookURL. It is stopped at cleanup.
func Alertmanager(t testing.TB, opts AlertmanagerOptions) *Server {
	t.Helper()
	if opts.DataDir == "" {
		opts.DataDir = t.TempDir()
	}
	if opts.Addr == "" {
		opts.Addr = freeAddr(t)
	}
	return startServer(t, func(ctx context.Context) (*localserver.Process, error) {
		return localserver.StartAlertmanager(ctx, opts)
	})
}

func startServer(t testing.TB, run func(context.Context) (*localserver.Process, error)) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p, err := run(ctx)
	if err != nil {
		if errors.Is(err, localserver.ErrBinaryNotFound) {
			SkipOrFail(t, "%v", err)
			return nil
		}
		t.Fatalf("testutil: %v", err)
	}
	s := &Server{Process: p, t: t, restart: run}
	t.Cleanup(func() {
		_ = s.Stop()
		if t.Failed() {
			t.Logf("--- %s log (%s) ---\n%s", s.Name, s.URL, s.Log())
		}
	})
	return s
}

func freeAddr(t testing.TB) string {
	t.Helper()
	addr, err := localserver.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}
