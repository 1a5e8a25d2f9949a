package promflowtest_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/promflowtest"
)

// TestLookPrometheus3 checks where the Prometheus 3 build is looked for and
// what a missing one reports.
func TestLookPrometheus3(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	t.Setenv(promflowtest.Prometheus3Env, "")
	p, err := promflowtest.Prometheus3Path()
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(cache, "promflow", "prometheus-"+promflowtest.Prometheus3Version, "prometheus"), p)
	assert.Equal(t, "GOFLAGS= GOBIN="+filepath.Dir(p)+" go install github.com/prometheus/prometheus/cmd/prometheus@"+promflowtest.Prometheus3Version,
		promflowtest.Prometheus3InstallCommand())

	_, err = promflowtest.LookPrometheus3()
	require.ErrorIs(t, err, promflowtest.ErrBinaryNotFound)
	var missing *promflowtest.MissingBuildError
	require.True(t, errors.As(err, &missing))
	assert.Equal(t, p, missing.Path)
	assert.Contains(t, err.Error(), promflowtest.Prometheus3InstallCommand())

	// A file that is not executable is not a build.
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, []byte("#!/bin/sh\n"), 0o644))
	_, err = promflowtest.LookPrometheus3()
	require.ErrorIs(t, err, promflowtest.ErrBinaryNotFound)
	require.NoError(t, os.Chmod(p, 0o755))
	got, err := promflowtest.LookPrometheus3()
	require.NoError(t, err)
	assert.Equal(t, p, got)

	// PROMFLOW_PROMETHEUS3 wins over the cache.
	other := filepath.Join(t.TempDir(), "prometheus3")
	t.Setenv(promflowtest.Prometheus3Env, other)
	_, err = promflowtest.LookPrometheus3()
	require.True(t, errors.As(err, &missing))
	assert.Equal(t, other, missing.Path)
}

// TestPrometheus3Starts starts the Prometheus 3 build through the same
// helpers as Debian's Prometheus 2, with a setting only 3.8 and later
// accept (scrape_native_histograms; Prometheus 2 refuses the field), and
// queries what it scraped.
func TestPrometheus3Starts(t *testing.T) {
	bin := promflowtest.Prometheus3Binary(t)
	addr, err := promflowtest.FreeAddr()
	require.NoError(t, err)
	prom := promflowtest.Prometheus(t, promflowtest.PrometheusOptions{
		Binary:        bin,
		Addr:          addr,
		ScrapeConfigs: []promflowtest.ScrapeConfig{{JobName: "self", Targets: []string{addr}, NativeHistograms: true}},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	require.NoError(t, prom.Client.Ready(ctx))
	v, err := prom.WaitQuery(ctx, `prometheus_build_info{job="self"}`, nil)
	require.NoError(t, err)
	require.Len(t, v, 1)
	// A go install build carries no version stamp.
	assert.Empty(t, v[0].Metric["version"])
}
