package main

import (
	"context"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/promflow/promflow/promflowtest"
)

// TestMain checks that run leaves no goroutine behind once it returns.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestRunServesAndShutsDown(t *testing.T) {
	dir := t.TempDir()
	scen := filepath.Join(dir, "s.yaml")
	require.NoError(t, os.WriteFile(scen, []byte("name: boot\nphases:\n  - at: 0s\n    set: [{metric: mock_high_cpu_usage_percent, value: 42}]\n"), 0o600))

	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-scenario", scen}, func(string) string { return "" }, logger, ready)
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("run returned early: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("server did not start")
	}

	resp, err := http.Get("http://" + addr + "/health")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "Mock Metrics Service is UP!", string(body))

	resp, err = http.Post("http://"+addr+"/simulate/disk-usage/sda/85", "text/plain", nil)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	resp, err = http.Get("http://" + addr + "/metrics")
	require.NoError(t, err)
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Contains(t, string(body), `mock_disk_usage_percent{device="sda",mountpoint="/data"} 85`)
	assert.Contains(t, string(body), `mock_high_cpu_usage_percent{instance="mock-app-1",service="mock-service"} 42`)
	assert.Contains(t, string(body), "go_goroutines")

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return after cancel")
	}
	_, err = http.Get("http://" + addr + "/health")
	assert.Error(t, err, "server still answering after shutdown")
}

func TestRunConfiguration(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	err := run(context.Background(), []string{"-nope"}, func(string) string { return "" }, logger, nil)
	assert.ErrorContains(t, err, "flags")

	err = run(context.Background(), []string{"-scenario", filepath.Join(t.TempDir(), "missing.yaml")}, func(string) string { return "" }, logger, nil)
	assert.ErrorContains(t, err, "scenario")

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("name: x\nphases:\n  - at: 0s\n    set: [{metric: nope, value: 1}]\n"), 0o600))
	err = run(context.Background(), []string{"-scenario", bad}, func(string) string { return "" }, logger, nil)
	assert.ErrorContains(t, err, "unknown metric")

	// PORT is used when -addr is absent: an invalid one fails to listen.
	err = run(context.Background(), nil, func(k string) string {
		if k == "PORT" {
			return "notaport"
		}
		return ""
	}, logger, nil)
	require.Error(t, err)
	assert.True(t, strings.Contains(err.Error(), "listen"), err.Error())
}

func TestRunHelp(t *testing.T) {
	var usage strings.Builder
	usageOutput = &usage
	t.Cleanup(func() { usageOutput = os.Stderr })
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	err := run(context.Background(), []string{"-h"}, func(string) string { return "" }, logger, nil)
	require.ErrorIs(t, err, flag.ErrHelp)
	assert.Contains(t, usage.String(), "-scenario")
	for _, f := range []string{"-max-bytes", "MOCK_MAX_BYTES", "-max-exposition-bytes", "-max-series", "-max-buckets", "-max-labels", "-max-label-value-bytes", "(default 67108864)"} {
		assert.Contains(t, usage.String(), f)
	}
}

func TestShutdownDoesNotWaitForDelayedScrape(t *testing.T) {
	scrapeStarted := make(chan struct{}, 1)
	testHookHandler = func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/metrics" {
				scrapeStarted <- struct{}{}
			}
			h.ServeHTTP(w, r)
		})
	}
	t.Cleanup(func() { testHookHandler = nil })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan string, 1)
	done := make(chan error, 1)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0"}, func(string) string { return "" }, logger, ready)
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("run returned early: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("server did not start")
	}
	req, err := http.NewRequest(http.MethodPut, "http://"+addr+"/api/v1/faults", strings.NewReader(`{"delay":"5m"}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	// A scrape now waits 5 minutes; shutting down must not (the shutdown
	// timeout is 10 s: without the request context ending at shutdown, run
	// would fail with a deadline error).
	scraped := make(chan error, 1)
	go func() {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err == nil {
			resp.Body.Close()
		}
		scraped <- err
	}()
	select {
	case <-scrapeStarted:
	case <-time.After(30 * time.Second):
		t.Fatal("the scrape did not reach the server")
	}
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(60 * time.Second):
		t.Fatal("run did not return after cancel")
	}
	select {
	case err := <-scraped:
		assert.NoError(t, err, "the delayed scrape should get an answer")
	case <-time.After(30 * time.Second):
		t.Fatal("the delayed scrape is still hanging after shutdown")
	}
}

// TestRunBudgets: the budget flags and their MOCK_* environment fallbacks
// reach the registry (GET /api/v1/usage), a flag beats its variable, and
// malformed values stop the start with a message naming them.
func TestRunBudgets(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	env := map[string]string{"MOCK_MAX_BYTES": "-1", "MOCK_MAX_SERIES": "5000", "MOCK_MAX_EXPOSITION_BYTES": "999999"}
	addr := startRun(t, []string{"-addr", "127.0.0.1:0", "-max-series", "40", "-max-buckets", "4", "-max-label-value-bytes", "20"}, env)
	resp, err := http.Get("http://" + addr + "/api/v1/usage")
	require.NoError(t, err)
	var usage struct {
		Data struct {
			MaxSeries          int   `json:"max_series"`
			MaxBytes           int64 `json:"max_bytes"`
			MaxExpositionBytes int64 `json:"max_exposition_bytes"`
		} `json:"data"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&usage))
	resp.Body.Close()
	assert.Equal(t, 40, usage.Data.MaxSeries, "the flag beats MOCK_MAX_SERIES")
	assert.Equal(t, int64(-1), usage.Data.MaxBytes, "MOCK_MAX_BYTES=-1: no limit")
	assert.Equal(t, int64(999999), usage.Data.MaxExpositionBytes)

	resp, err = http.Post("http://"+addr+"/api/v1/metrics", "application/json", strings.NewReader(`{"name":"h","type":"histogram","buckets":[1,2,3,4,5]}`))
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Contains(t, string(body), "MaxBuckets = 4")
	resp, err = http.Post("http://"+addr+"/simulate/disk-usage/"+strings.Repeat("d", 21)+"/5", "text/plain", nil)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "-max-label-value-bytes 20")

	for _, tc := range []struct {
		args []string
		env  map[string]string
		msg  string
	}{
		{nil, map[string]string{"MOCK_MAX_BYTES": "64MiB"}, `MOCK_MAX_BYTES="64MiB"`},
		{nil, map[string]string{"MOCK_MAX_LABELS": "0x20"}, "MOCK_MAX_LABELS"},
		{[]string{"-max-buckets", "-1"}, nil, "-max-buckets -1"},
		{[]string{"-max-series", "0"}, nil, "-max-series 0"},
	} {
		err := run(context.Background(), append([]string{"-addr", "127.0.0.1:0"}, tc.args...), func(k string) string { return tc.env[k] }, logger, nil)
		require.Error(t, err, tc.msg)
		assert.Contains(t, err.Error(), tc.msg)
	}
}

func TestRunFamilies(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	addr := startRun(t, []string{"-addr", "127.0.0.1:0", "-family", `{"name":"app_load","labels":["pod=pod-{0..49}","zone=z{0..1}"],"churn":{"share":0.1,"interval":"1m"}}`}, nil)
	resp, err := http.Get("http://" + addr + "/metrics")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, 100, strings.Count(string(body), "\napp_load{"))

	err = run(context.Background(), []string{"-addr", "127.0.0.1:0", "-max-series", "50", "-family", `{"name":"big","labels":["pod={0..99}"]}`},
		func(string) string { return "" }, logger, nil)
	assert.ErrorContains(t, err, "MaxSeries")
	err = run(context.Background(), []string{"-family", `{"name":"x","nope":1}`}, func(string) string { return "" }, logger, nil)
	assert.ErrorContains(t, err, "JSON family template")
}

func TestRunRemoteWrite(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Prometheus server")
	}
	prom := promflowtest.Prometheus(t, promflowtest.PrometheusOptions{ExtraArgs: []string{"--web.enable-remote-write-receiver"}})
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-remote-write-url", prom.URL + "/api/v1/write", "-remote-write-interval", "200ms", "-remote-write-labels", "job=pushed,env=test"},
			func(string) string { return "" }, logger, ready)
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("run returned early: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("server did not start")
	}
	qctx, qcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer qcancel()
	vec, err := prom.WaitQuery(qctx, `mock_service_up{job="pushed",env="test"}`, nil)
	require.NoError(t, err)
	assert.Equal(t, 1.0, float64(vec[0].Value))
	cancel()
	require.NoError(t, <-done, "run stops the pusher and returns")

	err = run(context.Background(), []string{"-addr", "127.0.0.1:0", "-remote-write-url", "ftp://x"}, func(string) string { return "" }, logger, nil)
	assert.ErrorContains(t, err, "remote write needs an http(s) URL")
	err = run(context.Background(), []string{"-addr", "127.0.0.1:0", "-remote-write-url", "http://x", "-remote-write-labels", "job"}, func(string) string { return "" }, logger, nil)
	assert.ErrorContains(t, err, "not name=value")
}

// startRun runs the command with args and env until the test ends (then it
// must return without error), and returns its address once it serves.
func startRun(t *testing.T, args []string, env map[string]string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, args, func(k string) string { return env[k] }, slog.New(slog.NewTextHandler(io.Discard, nil)), ready)
	}()
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, <-done)
	})
	select {
	case addr := <-ready:
		return addr
	case err := <-done:
		done <- nil // for the cleanup: run has returned already
		t.Fatalf("run returned early: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("server did not start")
	}
	return ""
}
