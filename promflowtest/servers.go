package promflowtest

import (
	"context"
	"errors"
	"testing"
	"time"
)

// Server is a real server process started for a test.
type Server struct {
	*Process
	t       testing.TB
	restart func(context.Context) (*Process, error)
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
		s.t.Fatalf("promflowtest: restart %s: %v", s.Name, err)
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
	return startServer(t, func(ctx context.Context) (*Process, error) {
		return StartPrometheus(ctx, opts)
	})
}

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
	return startServer(t, func(ctx context.Context) (*Process, error) {
		return StartAlertmanager(ctx, opts)
	})
}

func startServer(t testing.TB, run func(context.Context) (*Process, error)) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p, err := run(ctx)
	if err != nil {
		if errors.Is(err, ErrBinaryNotFound) {
			SkipOrFail(t, "%v", err)
			return nil
		}
		t.Fatalf("promflowtest: %v", err)
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
	addr, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}
