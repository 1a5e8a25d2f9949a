package mockexporter_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/internal/testutil"
	"github.com/promflow/promflow/mockexporter"
	"github.com/promflow/promflow/promflowtest"
)

// fakeReceiver answers the statuses in order (then the last one) and
// records the requests: error paths only, the real receivers are below.
type fakeReceiver struct {
	mu       sync.Mutex
	statuses []int
	n        int
	headers  []http.Header
}

func (f *fakeReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.headers = append(f.headers, r.Header.Clone())
	st := f.statuses[min(f.n, len(f.statuses)-1)]
	f.n++
	if st == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "0")
	}
	w.WriteHeader(st)
	_, _ = w.Write([]byte("status " + fmt.Sprint(st)))
}

func (f *fakeReceiver) requests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

func pushRegistry(t testing.TB, c *fakeClock) *mockexporter.Registry {
	t.Helper()
	r := emptyRegistry(t, c, mockexporter.Options{})
	require.NoError(t, r.Declare(mockexporter.MetricOptions{Name: "app_temperature_celsius", Initial: 78.125, LabelNames: []string{"room"}, Defaults: mockexporter.Labels{"room": "lab"}}))
	require.NoError(t, r.Declare(mockexporter.MetricOptions{Name: "app_jobs_total", Type: mockexporter.Counter}))
	require.NoError(t, r.Add("app_jobs_total", nil, 42))
	require.NoError(t, r.Declare(mockexporter.MetricOptions{Name: "app_wait_seconds", Type: mockexporter.Histogram, Buckets: []float64{0.5, 1}}))
	require.NoError(t, r.Observe("app_wait_seconds", nil, 0.25, 0.75, 3))
	return r
}

func TestPushRetriesAndRejects(t *testing.T) {
	c := newClock()
	r := pushRegistry(t, c)
	fast := func(url string) mockexporter.RemoteWriteOptions {
		return mockexporter.RemoteWriteOptions{URL: url, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, MaxRetries: 3}
	}
	for _, tc := range []struct {
		name     string
		statuses []int
		attempts int
		rejected bool
		ok       bool
	}{
		{"5xx then success", []int{503, 500, 204}, 3, false, true},
		{"429 then success", []int{429, 200}, 2, false, true},
		{"4xx is final", []int{400, 204}, 1, true, false},
		{"5xx until the retries run out", []int{502}, 4, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fr := &fakeReceiver{statuses: tc.statuses}
			srv := httptest.NewServer(fr)
			defer srv.Close()
			st, err := r.Push(context.Background(), fast(srv.URL+"/api/v1/write"))
			assert.Equal(t, tc.attempts, fr.requests())
			assert.Equal(t, tc.attempts, st.Attempts)
			assert.Equal(t, 2+5, st.Series, "a gauge, a counter, a histogram of 2 buckets (+Inf, _sum, _count)")
			if tc.ok {
				require.NoError(t, err)
			} else {
				var rwe *mockexporter.RemoteWriteError
				require.ErrorAs(t, err, &rwe)
				assert.Equal(t, tc.statuses[len(tc.statuses)-1-boolInt(tc.rejected)], rwe.Status)
				assert.Equal(t, tc.rejected, errors.Is(err, mockexporter.ErrRemoteWriteRejected), "%v", err)
			}
			h := fr.headers[0]
			assert.Equal(t, "snappy", h.Get("Content-Encoding"))
			assert.Equal(t, "application/x-protobuf", h.Get("Content-Type"))
			assert.Equal(t, "0.1.0", h.Get("X-Prometheus-Remote-Write-Version"), "Remote Write 1.0")
		})
	}
	_, err := r.Push(context.Background(), mockexporter.RemoteWriteOptions{URL: "ftp://x"})
	assert.ErrorIs(t, err, mockexporter.ErrInvalid)

	// RemoteWrite stops at a rejection when asked to.
	fr := &fakeReceiver{statuses: []int{401}}
	srv := httptest.NewServer(fr)
	defer srv.Close()
	err = r.RemoteWrite(context.Background(), fast(srv.URL), true)
	assert.ErrorIs(t, err, mockexporter.ErrRemoteWriteRejected)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// queryAt answers an instant query at ts as one value.
func queryAt(papi v1.API, q string, ts time.Time) (float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	v, _, _, err := papi.Query(ctx, q, ts)
	if err != nil {
		return 0, err
	}
	vec, ok := v.(model.Vector)
	if !ok || len(vec) != 1 {
		return 0, fmt.Errorf("%s: got %v", q, v)
	}
	return float64(vec[0].Value), nil
}

// expectPushed checks, on a Prometheus-compatible query API, that the
// pushed values are stored exactly at the push's timestamp.
func expectPushed(t *testing.T, url string, at time.Time) {
	t.Helper()
	client, err := api.NewClient(api.Config{Address: url})
	require.NoError(t, err)
	papi := v1.NewAPI(client)
	for q, want := range map[string]float64{
		`app_temperature_celsius{room="lab",job="push"}`:        78.125,
		`app_jobs_total{job="push"}`:                            42,
		`app_wait_seconds_bucket{le="0.5",job="push"}`:          1,
		`app_wait_seconds_bucket{le="+Inf",job="push"}`:         3,
		`app_wait_seconds_sum{job="push"}`:                      4,
		`timestamp(app_temperature_celsius{job="push"}) * 1000`: float64(at.UnixMilli()),
	} {
		testutil.Eventually(t, 30*time.Second, func() error {
			got, err := queryAt(papi, q, at)
			if err != nil {
				return err
			}
			if got != want {
				return fmt.Errorf("%s = %v, want %v", q, got, want)
			}
			return nil
		})
	}
}

func TestPushToPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Prometheus server")
	}
	prom := promflowtest.Prometheus(t, promflowtest.PrometheusOptions{ExtraArgs: []string{"--web.enable-remote-write-receiver"}})
	// The samples carry the registry's clock: bring it to now, within the
	// TSDB's head window.
	c := newClock()
	c.Advance(time.Since(c.Now()))
	r := pushRegistry(t, c)
	st, err := r.Push(context.Background(), mockexporter.RemoteWriteOptions{URL: prom.URL + "/api/v1/write", Labels: mockexporter.Labels{"job": "push"}})
	require.NoError(t, err)
	assert.Equal(t, 1, st.Attempts)
	expectPushed(t, prom.URL, st.At)

	// RemoteWrite pushes on its interval until its context ends.
	live := mockexporter.New(mockexporter.Options{Empty: true, Logger: discardLogger()})
	require.NoError(t, live.Declare(mockexporter.MetricOptions{Name: "app_up", Initial: 1}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- live.RemoteWrite(ctx, mockexporter.RemoteWriteOptions{URL: prom.URL + "/api/v1/write", Interval: 200 * time.Millisecond, Labels: mockexporter.Labels{"job": "loop"}}, false)
	}()
	client, err := api.NewClient(api.Config{Address: prom.URL})
	require.NoError(t, err)
	papi := v1.NewAPI(client)
	testutil.Eventually(t, 30*time.Second, func() error {
		n, err := queryAt(papi, `count_over_time(app_up{job="loop"}[1m])`, time.Now())
		if err != nil {
			return err
		}
		if n < 3 {
			return fmt.Errorf("%v pushes so far", n)
		}
		return nil
	})
	cancel()
	require.NoError(t, <-done)
}

// startVictoriaMetrics runs Debian's victoria-metrics on a free port until
// the test ends and returns its URL.
func startVictoriaMetrics(t *testing.T) string {
	t.Helper()
	bin, err := promflowtest.LookBinary("victoria-metrics", "victoria-metrics")
	if err != nil {
		promflowtest.SkipOrFail(t, "%v", err)
		return ""
	}
	addr, err := promflowtest.FreeAddr()
	require.NoError(t, err)
	// Points become visible to queries after -search.latencyOffset (30s by
	// default): none here, the test queries what it just pushed.
	cmd := exec.Command(bin, "-storageDataPath", t.TempDir(), "-httpListenAddr", addr, "-loggerLevel", "ERROR", "-search.latencyOffset", "0s", "-search.disableCache")
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	url := "http://" + addr
	testutil.Eventually(t, 30*time.Second, func() error {
		resp, err := http.Get(url + "/health")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("health: %s", resp.Status)
		}
		return nil
	})
	return url
}

func TestPushToVictoriaMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("starts VictoriaMetrics")
	}
	url := startVictoriaMetrics(t)
	c := newClock()
	c.Advance(time.Since(c.Now()))
	r := pushRegistry(t, c)
	st, err := r.Push(context.Background(), mockexporter.RemoteWriteOptions{URL: url + "/api/v1/write", Labels: mockexporter.Labels{"job": "push"}})
	require.NoError(t, err)
	expectPushed(t, url, st.At)
}
