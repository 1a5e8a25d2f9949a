package promflowtest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/internal/testutil"
	"github.com/promflow/promflow/promflowtest"
)

// startPipeline brings up the whole flow on free ports with a 1 s scrape
// interval and a database of the test's own.
func startPipeline(t *testing.T) *promflowtest.RunningPipeline {
	t.Helper()
	return promflowtest.Pipeline(t, promflowtest.PipelineOptions{})
}

func post(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "text/plain", nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// TestAlertRules checks the shipped rules with promtool and runs their unit
// tests (rules_test.yml) through RuleTest.
func TestAlertRules(t *testing.T) {
	promtool, err := promflowtest.LookBinary("promtool", "prometheus")
	if err != nil {
		testutil.SkipOrFail(t, "%v", err)
	}
	out, err := exec.Command(promtool, "check", "rules", "rules.yml").CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Empty(t, promflowtest.RuleTest(t, "rules_test.yml"))
}

// TestGeneratedConfigIsValid checks the Prometheus config the pipeline
// generates with promtool check config.
func TestGeneratedConfigIsValid(t *testing.T) {
	promtool, err := promflowtest.LookBinary("promtool", "prometheus")
	if err != nil {
		testutil.SkipOrFail(t, "%v", err)
	}
	dir := t.TempDir()
	cfg := promflowtest.PrometheusOptions{
		DataDir:       dir,
		ScrapeConfigs: []promflowtest.ScrapeConfig{{JobName: "mock-metrics", Targets: []string{"127.0.0.1:8082"}, HonorLabels: true}},
		RuleFiles:     map[string]string{"mock-alerts.yml": promflowtest.AlertRules},
		Alertmanagers: []string{"127.0.0.1:9093"},
	}
	b, err := promflowtest.PrometheusConfigFile(cfg)
	require.NoError(t, err)
	conf := filepath.Join(dir, "prometheus.yml")
	require.NoError(t, writeFile(conf, b))
	require.NoError(t, writeFile(filepath.Join(dir, "mock-alerts.yml"), []byte(promflowtest.AlertRules)))
	out, err := exec.Command(promtool, "check", "config", conf).CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "SUCCESS")
	assert.True(t, bytes.Contains(b, []byte(`"honor_labels": true`)), "mock-metrics keeps its own instance label")
}

// TestStartFailureStopsWhatStarted makes Prometheus fail to start after
// mock-metrics and Alertmanager are up: its address is taken by a server
// that answers /-/ready like a Prometheus (as Debian's own service on :9090
// does). Start must not take that server for its child, must return an
// error saying the address is in use (not panic), and must stop what it
// started, freeing its ports.
func TestStartFailureStopsWhatStarted(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	impostor := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "Prometheus Server is Ready.\n")
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = impostor.Serve(taken) }()
	defer impostor.Close()
	mockAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	amAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p, err := promflowtest.StartPipeline(ctx, promflowtest.PipelineOptions{
		MockAddr:         mockAddr,
		ServiceAddr:      "127.0.0.1:0",
		PrometheusAddr:   taken.Addr().String(),
		AlertmanagerAddr: amAddr,
		DatabaseURL:      promflowtest.DatabaseURL(t),
		DataDir:          t.TempDir(),
	})
	if errors.Is(err, promflowtest.ErrBinaryNotFound) {
		testutil.SkipOrFail(t, "%v", err)
	}
	require.Error(t, err)
	assert.Nil(t, p)
	assert.ErrorIs(t, err, promflowtest.ErrAddrInUse)
	assert.Contains(t, err.Error(), "prometheus")
	for _, addr := range []string{mockAddr, amAddr} {
		ln, err := net.Listen("tcp", addr)
		require.NoError(t, err, "%s still in use after the failed Start", addr)
		ln.Close()
	}
}

// TestPipelineUnknownBackend: a backend that is neither prometheus nor
// victoriametrics is refused before anything starts.
func TestPipelineUnknownBackend(t *testing.T) {
	_, err := promflowtest.StartPipeline(context.Background(), promflowtest.PipelineOptions{Backend: "thanos"})
	require.ErrorIs(t, err, promflowtest.ErrUnknownBackend)
	assert.Contains(t, err.Error(), `"thanos"`)
}
