package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/internal/testutil"
	"github.com/promflow/promflow/promflowtest"
	"github.com/promflow/promflow/promquery"
)

// TestRunStartsAndStopsEverything runs the command as a user would (with
// environment fallbacks on free ports), checks that every component
// answers, then cancels it as Ctrl-C does: every server and child process
// must be gone.
func TestRunStartsAndStopsEverything(t *testing.T) {
	env := map[string]string{
		"MOCK_ADDR":         "127.0.0.1:0",
		"SERVICE_ADDR":      "127.0.0.1:0",
		"PROMETHEUS_ADDR":   "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t)),
		"ALERTMANAGER_ADDR": "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t)),
		"DATABASE_URL":      promflowtest.DatabaseURL(t),
		"SCRAPE_INTERVAL":   "1s",
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out bytes.Buffer
	ready := make(chan *promflowtest.RunningPipeline, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-poll-interval", "1s"}, func(k string) string { return env[k] }, slog.New(slog.NewTextHandler(io.Discard, nil)), &out, ready)
	}()
	var p *promflowtest.RunningPipeline
	select {
	case p = <-ready:
	case err := <-done:
		if errors.Is(err, promflowtest.ErrBinaryNotFound) {
			testutil.SkipOrFail(t, "%v", err)
		}
		t.Fatalf("run returned early: %v", err)
	case <-time.After(90 * time.Second):
		t.Fatal("pipeline did not start")
	}

	urls := map[string]string{
		"mock-metrics":    p.MockURL + "/health",
		"prometheus":      p.PrometheusURL + "/-/ready",
		"alertmanager":    p.AlertmanagerURL + "/-/ready",
		"service-metrics": p.ServiceURL + "/health",
	}
	for name, u := range urls {
		resp, err := http.Get(u)
		require.NoError(t, err, name)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode, name)
		assert.Contains(t, out.String(), name)
	}
	assert.Contains(t, out.String(), p.PrometheusURL)
	assert.Equal(t, "http://"+env["PROMETHEUS_ADDR"], p.PrometheusURL)

	// Lifecycle API off by default; kill -9 of Prometheus does not stop
	// the command: Prometheus comes back on the same address.
	resp, err := http.Post(p.PrometheusURL+"/-/quit", "text/plain", nil)
	require.NoError(t, err)
	resp.Body.Close()
	assert.NotEqual(t, http.StatusOK, resp.StatusCode, "lifecycle API is off")
	old := p.Process("prometheus")
	require.NotNil(t, old)
	require.NoError(t, old.Kill())
	testutil.Eventually(t, 60*time.Second, func() error {
		select {
		case err := <-done:
			t.Fatalf("run returned after a child crash: %v", err)
		default:
		}
		if cur := p.Process("prometheus"); cur == nil || cur == old {
			return errors.New("prometheus not restarted yet")
		}
		resp, err := http.Get(p.PrometheusURL + "/-/ready")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return errors.New(resp.Status)
		}
		return nil
	})

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(60 * time.Second):
		t.Fatal("run did not return after cancel")
	}
	client := &http.Client{Timeout: 2 * time.Second}
	for name, u := range urls {
		resp, err := client.Get(u)
		if err == nil {
			resp.Body.Close()
		}
		assert.Error(t, err, fmt.Sprintf("%s still answering after shutdown", name))
	}
}

func TestRunFlagErrors(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	none := func(string) string { return "" }
	assert.ErrorContains(t, run(context.Background(), []string{"-nope"}, none, log, io.Discard, nil), "flags")
	assert.ErrorContains(t, run(context.Background(), []string{"-scrape-interval", "-1s"}, none, log, io.Discard, nil), "want between")
	assert.ErrorContains(t, run(context.Background(), []string{"-poll-interval", "soon"}, none, log, io.Discard, nil), "flags")
	// A bad environment value is an error, not a silent default; bare
	// seconds are accepted as in service-metrics.
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "SCRAPE_INTERVAL" {
				return v
			}
			return ""
		}
	}
	assert.ErrorContains(t, run(context.Background(), nil, env("soon"), log, io.Discard, nil), "SCRAPE_INTERVAL")
	assert.ErrorContains(t, run(context.Background(), []string{"-nope"}, env("5"), log, io.Discard, nil), "flags")
}

func TestRunHelp(t *testing.T) {
	var usage strings.Builder
	usageOutput = &usage
	t.Cleanup(func() { usageOutput = os.Stderr })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	err := run(context.Background(), []string{"-h"}, func(string) string { return "" }, log, io.Discard, nil)
	require.ErrorIs(t, err, flag.ErrHelp)
	assert.Contains(t, usage.String(), "-prometheus-addr")
	assert.Contains(t, usage.String(), "-prometheus-lifecycle")
}

// TestRunBackendVictoriaMetrics starts the command with -backend
// victoriametrics: the banner names VictoriaMetrics, service-metrics
// queries it, and it holds what Prometheus scraped (remote write).
func TestRunBackendVictoriaMetrics(t *testing.T) {
	env := map[string]string{
		"MOCK_ADDR":            "127.0.0.1:0",
		"SERVICE_ADDR":         "127.0.0.1:0",
		"PROMETHEUS_ADDR":      "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t)),
		"ALERTMANAGER_ADDR":    "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t)),
		"VICTORIAMETRICS_ADDR": "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t)),
		"DATABASE_URL":         promflowtest.DatabaseURL(t),
		"SCRAPE_INTERVAL":      "1s",
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out bytes.Buffer
	ready := make(chan *promflowtest.RunningPipeline, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-backend", "victoriametrics", "-poll-interval", "1s"}, func(k string) string { return env[k] }, slog.New(slog.NewTextHandler(io.Discard, nil)), &out, ready)
	}()
	var p *promflowtest.RunningPipeline
	select {
	case p = <-ready:
	case err := <-done:
		if errors.Is(err, promflowtest.ErrBinaryNotFound) {
			testutil.SkipOrFail(t, "%v", err)
		}
		t.Fatalf("run returned early: %v", err)
	case <-time.After(90 * time.Second):
		t.Fatal("pipeline did not start")
	}
	assert.Equal(t, "http://"+env["VICTORIAMETRICS_ADDR"], p.VictoriaMetricsURL)
	assert.Equal(t, p.VictoriaMetricsURL, p.QueryURL)
	assert.Contains(t, out.String(), "victoriametrics  "+p.VictoriaMetricsURL)
	vm, err := promquery.New(p.VictoriaMetricsURL, promquery.Options{})
	require.NoError(t, err)
	defer vm.Close()
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	_, err = vm.WaitForValue(wctx, `up{job="mock-metrics"}`, func(v model.Vector) bool { return len(v) == 1 && v[0].Value == 1 })
	require.NoError(t, err)

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return after cancel")
	}
}

// TestRunUnknownBackend: -backend takes prometheus or victoriametrics.
func TestRunUnknownBackend(t *testing.T) {
	err := run(context.Background(), []string{"-backend", "mimir"}, func(string) string { return "" }, slog.New(slog.DiscardHandler), io.Discard, nil)
	require.ErrorIs(t, err, promflowtest.ErrUnknownBackend)
}
