package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/promflow/promflow/promflowtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRunServesAndShutsDown(t *testing.T) {
	prom := promflowtest.Prometheus(t, promflowtest.PrometheusOptions{})
	env := map[string]string{
		"PORT":           "0", // any free port, as ":0"
		"PROMETHEUS_URL": prom.URL,
		"DATABASE_URL":   promflowtest.DatabaseURL(t),
		"POLL_INTERVAL":  "1000", // milliseconds, as the original took it
	}
	addr, stop := startRun(t, env)
	resp, err := http.Get("http://" + addr + "/health")
	require.NoError(t, err)
	var health map[string]string
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&health))
	resp.Body.Close()
	assert.Equal(t, "ok", health["status"])

	resp, err = http.Get("http://" + addr + "/ready")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	require.NoError(t, stop())
	_, err = http.Get("http://" + addr + "/health")
	assert.Error(t, err, "server still answering after shutdown")
}

// startRun runs the command on 127.0.0.1:0 with env as its environment
// and returns its address once it serves, and a stop that ends it and
// returns run's error.
func startRun(t *testing.T, env map[string]string) (addr string, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0"}, func(k string) string { return env[k] }, slog.New(slog.NewTextHandler(io.Discard, nil)), ready)
	}()
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("run returned early: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("server did not start")
	}
	return addr, func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			return errors.New("run did not return after cancel")
		}
	}
}

func TestRunConfigurationErrors(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	none := func(string) string { return "" }
	assert.ErrorContains(t, run(context.Background(), []string{"-nope"}, none, log, nil), "flags")
	assert.ErrorContains(t, run(context.Background(), []string{"-poll-interval", "soon"}, none, log, nil), "poll interval")
	assert.ErrorContains(t, run(context.Background(), nil, func(k string) string {
		if k == "POLL_INTERVAL" {
			return "-5"
		}
		return ""
	}, log, nil), "poll interval")
}

func TestRunHelp(t *testing.T) {
	var usage strings.Builder
	usageOutput = &usage
	t.Cleanup(func() { usageOutput = os.Stderr })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	err := run(context.Background(), []string{"-h"}, func(string) string { return "" }, log, nil)
	require.ErrorIs(t, err, flag.ErrHelp)
	assert.Contains(t, usage.String(), "-poll-interval")
}

func TestPortAddr(t *testing.T) {
	assert.Equal(t, ":8005", portAddr("", ":8005"))
	assert.Equal(t, ":9000", portAddr("9000", ":8005"))
	assert.Equal(t, "127.0.0.1:9000", portAddr("127.0.0.1:9000", ":8005"))
}
