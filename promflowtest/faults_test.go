package promflowtest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/internal/testutil"
	"github.com/promflow/promflow/promflowtest"
)

// Fault drills with real processes: a child of the pipeline killed with
// SIGKILL is restarted, service-metrics' /ready shows the outage and the
// recovery, and the alert loop works again. Each drill is bounded by its
// waits' timeouts.

// logBuffer is a goroutine-safe log sink for a pipeline's slog.Logger.
type logBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func newLogBuffer() *logBuffer { return &logBuffer{} }

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// drillPipeline starts a pipeline whose log the test can read.
func drillPipeline(t *testing.T) (*promflowtest.RunningPipeline, *logBuffer) {
	t.Helper()
	logs := newLogBuffer()
	p := promflowtest.Pipeline(t, promflowtest.PipelineOptions{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- pipeline log ---\n%s", logs.String())
		}
	})
	return p, logs
}

// readyChecks returns the status code of service-metrics' /ready and the
// status of each dependency it reports.
func readyChecks(url string) (int, map[string]string, error) {
	resp, err := http.Get(url + "/ready")
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var body map[string]json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return resp.StatusCode, nil, err
	}
	st := map[string]string{}
	for k, v := range body {
		var c struct{ Status string }
		if json.Unmarshal(v, &c) == nil {
			st[k] = c.Status
		}
	}
	return resp.StatusCode, st, nil
}

// TestLifecycleAPIsOff: the pipeline's Prometheus refuses POST /-/quit
// and the admin API (no flag -prometheus-lifecycle), and keeps running.
func TestLifecycleAPIsOff(t *testing.T) {
	p := startPipeline(t)
	for _, route := range []string{"/-/quit", "/-/reload", "/api/v1/admin/tsdb/snapshot"} {
		code, body := post(t, p.PrometheusURL+route)
		assert.NotEqual(t, http.StatusOK, code, "%s: %s", route, body)
		assert.GreaterOrEqual(t, code, 400, route)
	}
	resp, err := http.Get(p.PrometheusURL + "/-/ready")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, 0, p.Restarts("prometheus"))
	// Its API is readable cross-origin from local pages only.
	for origin, allowed := range map[string]bool{"http://evil.example": false, "http://localhost:8005": true, "http://127.0.0.1:3000": true} {
		req, err := http.NewRequest(http.MethodGet, p.PrometheusURL+"/api/v1/status/buildinfo", nil)
		require.NoError(t, err)
		req.Header.Set("Origin", origin)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, allowed, resp.Header.Get("Access-Control-Allow-Origin") != "", origin)
	}
}

// TestLifecycleOption: with PrometheusLifecycle, /-/quit works, and the
// pipeline starts Prometheus again.
func TestLifecycleOption(t *testing.T) {
	p := promflowtest.Pipeline(t, promflowtest.PipelineOptions{PrometheusLifecycle: true})
	old := p.Process("prometheus")
	require.NotNil(t, old)
	code, body := post(t, p.PrometheusURL+"/-/quit")
	require.Equal(t, http.StatusOK, code, body)
	waitRestarted(t, p, "prometheus", old)
}

// waitRestarted waits until the child runs again as a new process and
// service-metrics is ready, with no unrecoverable error reported.
func waitRestarted(t *testing.T, p *promflowtest.RunningPipeline, name string, old *promflowtest.Process) {
	t.Helper()
	testutil.Eventually(t, 90*time.Second, func() error {
		cur := p.Process(name)
		if cur == nil || cur == old {
			return fmt.Errorf("%s not restarted yet", name)
		}
		code, st, err := readyChecks(p.ServiceURL)
		if err != nil {
			return err
		}
		if code != http.StatusOK || st[name] != "up" {
			return fmt.Errorf("/ready %d %v", code, st)
		}
		return nil
	})
	assert.GreaterOrEqual(t, p.Restarts(name), 1)
	select {
	case err := <-p.Err():
		t.Fatalf("pipeline reported an unrecoverable error: %v", err)
	default:
	}
}

// crashChild kills the child with SIGKILL and, while it is down, checks
// that service-metrics' /ready reports the outage: the child's address
// is held by a server answering 503 until /ready says so, which keeps the
// supervisor's restarts failing meanwhile. Then it waits for the restart.
func crashChild(t *testing.T, p *promflowtest.RunningPipeline, name string) {
	t.Helper()
	old := p.Process(name)
	require.NotNil(t, old, name)
	require.NoError(t, old.Kill())
	// The supervisor waits at least 250 ms before its first restart.
	hold, err := net.Listen("tcp", old.Addr)
	if err != nil {
		// Only if this goroutine was held up longer than that: the outage
		// was too short to observe; the recovery is still checked.
		t.Logf("%s restarted before the drill could hold its address: %v", name, err)
		waitRestarted(t, p, name, old)
		return
	}
	blocker := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "drill: down", http.StatusServiceUnavailable)
	}), ReadHeaderTimeout: time.Second}
	go func() { _ = blocker.Serve(hold) }()
	testutil.Eventually(t, 30*time.Second, func() error {
		code, st, err := readyChecks(p.ServiceURL)
		if err != nil {
			return err
		}
		if code != http.StatusServiceUnavailable || st[name] != "down" {
			return fmt.Errorf("/ready %d %v while %s is down", code, st, name)
		}
		return nil
	})
	require.Nil(t, p.Process(name), "%s reported running while its address is held", name)
	require.NoError(t, blocker.Close())
	waitRestarted(t, p, name, old)
}

// alertLoopWorks simulates memory 95 and waits for the incident.
func alertLoopWorks(t *testing.T, p *promflowtest.RunningPipeline) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	require.NoError(t, p.Simulate(ctx, "/simulate/memory-usage/95"))
	inc, err := p.WaitIncidentOpened(ctx, "mock-service")
	require.NoError(t, err)
	assert.Contains(t, inc.Title, "memory", "incident %+v", inc)
}

// TestDrillKillPrometheus: kill -9 of the pipeline's Prometheus.
func TestDrillKillPrometheus(t *testing.T) {
	p, logs := drillPipeline(t)
	crashChild(t, p, "prometheus")
	alertLoopWorks(t, p)
	assertOutageLogged(t, logs, "prometheus")
}

// TestDrillKillAlertmanager: kill -9 of the pipeline's Alertmanager.
func TestDrillKillAlertmanager(t *testing.T) {
	p, logs := drillPipeline(t)
	crashChild(t, p, "alertmanager")
	alertLoopWorks(t, p)
	assertOutageLogged(t, logs, "alertmanager")
}

func assertOutageLogged(t *testing.T, logs *logBuffer, name string) {
	t.Helper()
	l := logs.String()
	for _, want := range []string{"child process exited: restarting it", "child process restarted"} {
		assert.Contains(t, l, want)
	}
	assert.Contains(t, l, "component="+name)
}
