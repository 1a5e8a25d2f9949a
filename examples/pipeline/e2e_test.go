package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/internal/testutil"
	"github.com/promflow/promflow/promflowtest"
)

// totals reads the summary table of a report.
func totals(t *testing.T, report string) (total, passed, failed int) {
	t.Helper()
	get := func(label string) int {
		m := regexp.MustCompile(`\| \*\*` + label + `\*\* +\| (\d+) +\|`).FindStringSubmatch(report)
		require.NotNil(t, m, "no %q row in the report:\n%s", label, report)
		n, err := strconv.Atoi(m[1])
		require.NoError(t, err)
		return n
	}
	return get("Tests totaux"), get("Tests réussis"), get("Tests échoués")
}

// TestRunE2EReport runs `pipeline -e2e-report FILE` as a user would, on
// free ports: the pipeline comes up, the 19 checks and the alert loop
// pass, the report is written, run returns nil (exit 0) and every port is
// free again.
func TestRunE2EReport(t *testing.T) {
	env := map[string]string{
		"MOCK_ADDR":         "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t)),
		"SERVICE_ADDR":      "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t)),
		"PROMETHEUS_ADDR":   "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t)),
		"ALERTMANAGER_ADDR": "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t)),
		"DATABASE_URL":      promflowtest.DatabaseURL(t),
	}
	file := filepath.Join(t.TempDir(), "E2E_TEST_REPORT.md")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out bytes.Buffer
	err := run(ctx, []string{"-e2e-report", file, "-scrape-interval", "1s", "-poll-interval", "1s"},
		func(k string) string { return env[k] }, slog.New(slog.NewTextHandler(io.Discard, nil)), &out, nil)
	if errors.Is(err, promflowtest.ErrBinaryNotFound) {
		testutil.SkipOrFail(t, "%v", err)
	}
	b, readErr := os.ReadFile(file)
	require.NoError(t, readErr)
	require.NoError(t, err, "report:\n%s", b)
	total, passed, failed := totals(t, string(b))
	assert.Equal(t, 23, total, "19 seed checks and 4 of the alert loop")
	assert.Equal(t, 23, passed)
	assert.Zero(t, failed)
	assert.Contains(t, string(b), "✅ **100%**")
	assert.Empty(t, out.String(), "the report went to the file, stdout stays clean")
	for _, k := range []string{"MOCK_ADDR", "SERVICE_ADDR", "PROMETHEUS_ADDR", "ALERTMANAGER_ADDR"} {
		ln, err := net.Listen("tcp", env[k])
		require.NoError(t, err, "%s still in use after the e2e run", k)
		ln.Close()
	}
}

// TestRunE2ETarget checks an already running pipeline given by URL, with
// the report on stdout; then services that fail every check: the report
// is still written and run returns errChecksFailed (exit 1).
func TestRunE2ETarget(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p, err := promflowtest.StartPipeline(ctx, promflowtest.PipelineOptions{
		MockAddr:         "127.0.0.1:0",
		ServiceAddr:      "127.0.0.1:0",
		PrometheusAddr:   "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t)),
		AlertmanagerAddr: "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t)),
		DatabaseURL:      promflowtest.DatabaseURL(t),
		ScrapeInterval:   time.Second,
		PollInterval:     time.Second,
		DataDir:          t.TempDir(),
	})
	if errors.Is(err, promflowtest.ErrBinaryNotFound) {
		testutil.SkipOrFail(t, "%v", err)
	}
	require.NoError(t, err)
	defer func() { assert.NoError(t, p.Shutdown(context.Background())) }()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	none := func(string) string { return "" }

	var out bytes.Buffer
	target := fmt.Sprintf("mock=%s,prometheus=%s,service=%s", p.MockURL, p.PrometheusURL, p.ServiceURL)
	err = run(ctx, []string{"-e2e-report", "-", "-e2e-target", target, "-e2e-alert-loop=false"}, none, log, &out, nil)
	require.NoError(t, err, "report:\n%s", out.String())
	total, passed, _ := totals(t, out.String())
	assert.Equal(t, 19, total, "the seed's 19 checks, no alert loop")
	assert.Equal(t, 19, passed)
	assert.NotContains(t, out.String(), "Stage 6")

	dead := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer dead.Close()
	out.Reset()
	target = fmt.Sprintf("mock=%s,prometheus=%s,service=%s", dead.URL, dead.URL, dead.URL)
	err = run(ctx, []string{"-e2e-report", "-", "-e2e-target", target, "-e2e-timeout", "200ms"}, none, log, &out, nil)
	require.ErrorIs(t, err, errChecksFailed)
	total, passed, failed := totals(t, out.String())
	assert.Equal(t, 23, total)
	assert.Zero(t, passed)
	assert.Equal(t, 23, failed)
	assert.Contains(t, out.String(), "❌ FAILED")
}

func TestRunE2EFlagErrors(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	none := func(string) string { return "" }
	for want, args := range map[string][]string{
		"needs -e2e-report":   {"-e2e-target", "mock=http://a,prometheus=http://b,service=http://c"},
		"service=URL is miss": {"-e2e-report", "-", "-e2e-target", "mock=http://a,prometheus=http://b"},
		"is not mock=URL":     {"-e2e-report", "-", "-e2e-target", "mock=http://a,prom=http://b,service=http://c"},
		"not an http(s) URL":  {"-e2e-report", "-", "-e2e-target", "mock=ftp://a,prometheus=http://b,service=http://c"},
		"must be positive":    {"-e2e-report", "-", "-e2e-timeout", "0s"},
	} {
		err := run(context.Background(), args, none, log, io.Discard, nil)
		assert.ErrorContains(t, err, want, "%v", args)
		assert.ErrorContains(t, err, "flags", "%v", args)
	}
}

func TestRunHelpE2E(t *testing.T) {
	var usage strings.Builder
	usageOutput = &usage
	t.Cleanup(func() { usageOutput = os.Stderr })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	err := run(context.Background(), []string{"-h"}, func(string) string { return "" }, log, io.Discard, nil)
	require.ErrorIs(t, err, flag.ErrHelp)
	for _, f := range []string{"-e2e-report FILE", "-e2e-target mock=URL,prometheus=URL,service=URL", "-e2e-alert-loop", "-e2e-timeout"} {
		assert.Contains(t, usage.String(), f)
	}
}
