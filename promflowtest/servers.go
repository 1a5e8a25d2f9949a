package promflowtest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/promflow/promflow/promquery"
)

// Server is a real server process started for a test.
type Server struct {
	*Process
	t       testing.TB
	restart func(context.Context) (*Process, error)
}

// Restart stops the server (if still running) and starts it again on the same
// address with the same data directory, e.g. to test reconnection. Call it
// from the test's goroutine, not concurrently with other uses of s.
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

// PrometheusServer is a Prometheus started by [Prometheus].
type PrometheusServer struct {
	*Server
	// Client talks to this server; it is closed at cleanup.
	Client *promquery.Client
}

// WaitQuery waits until the query has a vector that satisfies cond (nil:
// any sample); see [WaitQuery].
func (p *PrometheusServer) WaitQuery(ctx context.Context, query string, cond func(model.Vector) bool) (model.Vector, error) {
	return WaitQuery(ctx, p.Client, query, cond)
}

// WaitAlertFiring waits until an alert whose labels include match fires;
// see [WaitAlertFiring].
func (p *PrometheusServer) WaitAlertFiring(ctx context.Context, match Labels) (promquery.Alert, error) {
	return WaitAlertFiring(ctx, p.Client, match)
}

// WaitAlertResolved waits until no alert whose labels include match is
// pending or firing.
func (p *PrometheusServer) WaitAlertResolved(ctx context.Context, match Labels) error {
	return WaitAlertResolved(ctx, p.Client, match)
}

// WaitTargetUp waits until a target of the job is up; see
// [promquery.Client.WaitTargetUp].
func (p *PrometheusServer) WaitTargetUp(ctx context.Context, job string) (promquery.ActiveTarget, error) {
	return p.Client.WaitTargetUp(ctx, job, "")
}

// Prometheus starts a real Prometheus (Debian package prometheus) on a free
// port with a generated config (see [PrometheusOptions]) and a temporary
// data directory. It is stopped at cleanup; its log is printed if the test
// failed. Without the binary the test skips (fails when CI is set).
func Prometheus(t testing.TB, opts PrometheusOptions) *PrometheusServer {
	t.Helper()
	if opts.DataDir == "" {
		opts.DataDir = t.TempDir()
	}
	// Fix the address now so that Restart comes back on the same one.
	if opts.Addr == "" {
		opts.Addr = freeAddr(t)
	}
	s := startServer(t, func(ctx context.Context) (*Process, error) {
		return StartPrometheus(ctx, opts)
	})
	c, err := promquery.New(s.URL, promquery.Options{})
	if err != nil {
		t.Fatalf("promflowtest: prometheus client: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &PrometheusServer{Server: s, Client: c}
}

// AlertmanagerServer is an Alertmanager started by [Alertmanager].
type AlertmanagerServer struct {
	*Server
	// Receiver records every notification of the default config when
	// neither Config nor WebhookURL was given; nil otherwise.
	Receiver *ReceiverServer
}

// Alerts returns the unresolved alerts Alertmanager holds.
func (a *AlertmanagerServer) Alerts(ctx context.Context) ([]AlertmanagerAlert, error) {
	return AlertmanagerAlerts(ctx, a.URL)
}

// WaitAlert waits until Alertmanager holds an alert whose labels include
// match in the state ("active", "suppressed" or "" for any); see
// [WaitAlertmanagerAlert].
func (a *AlertmanagerServer) WaitAlert(ctx context.Context, match Labels, state string) (AlertmanagerAlert, error) {
	return WaitAlertmanagerAlert(ctx, a.URL, match, state)
}

// WaitAlertResolved waits until Alertmanager holds no unresolved alert
// whose labels include match.
func (a *AlertmanagerServer) WaitAlertResolved(ctx context.Context, match Labels) error {
	return WaitAlertmanagerAlertResolved(ctx, a.URL, match)
}

// Alertmanager starts a real Alertmanager (Debian package
// prometheus-alertmanager) on a free port, clustering off, with
// opts.Config as its configuration, or a default one that sends every
// notification to opts.WebhookURL, or else to a [Receiver] it starts (the
// handle's Receiver). Routing, grouping, inhibition and silences are
// Alertmanager's own. It is stopped at cleanup; its log is printed if the
// test failed. Without the binary the test skips (fails when CI is set).
func Alertmanager(t testing.TB, opts AlertmanagerOptions) *AlertmanagerServer {
	t.Helper()
	if opts.DataDir == "" {
		opts.DataDir = t.TempDir()
	}
	if opts.Addr == "" {
		opts.Addr = freeAddr(t)
	}
	var rec *ReceiverServer
	if opts.Config == "" && opts.WebhookURL == "" {
		rec = Receiver(t)
		opts.WebhookURL = rec.URL()
	}
	s := startServer(t, func(ctx context.Context) (*Process, error) {
		return StartAlertmanager(ctx, opts)
	})
	return &AlertmanagerServer{Server: s, Receiver: rec}
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
