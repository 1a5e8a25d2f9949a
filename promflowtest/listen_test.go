package promflowtest_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/internal/testutil"
	"github.com/promflow/promflow/promflowtest"
)

// TestPipelineDualStack: with "localhost" addresses (the defaults), every
// component answers on both loopbacks, 127.0.0.1 and [::1], as clients
// that resolve localhost to ::1 (Node 18 and later) need.
func TestPipelineDualStack(t *testing.T) {
	if ln, err := net.Listen("tcp", "[::1]:0"); err != nil {
		testutil.SkipOrFail(t, "no IPv6 loopback on this machine: %v", err)
	} else {
		ln.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p, err := promflowtest.StartPipeline(ctx, promflowtest.PipelineOptions{
		MockAddr:         "localhost:0",
		ServiceAddr:      "localhost:0",
		PrometheusAddr:   fmt.Sprintf("localhost:%d", testutil.FreePort(t)),
		AlertmanagerAddr: fmt.Sprintf("localhost:%d", testutil.FreePort(t)),
		DatabaseURL:      promflowtest.DatabaseURL(t),
		ScrapeInterval:   time.Second,
		PollInterval:     time.Second,
		DataDir:          t.TempDir(),
	})
	if errors.Is(err, promflowtest.ErrBinaryNotFound) {
		testutil.SkipOrFail(t, "%v", err)
	}
	require.NoError(t, err)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		assert.NoError(t, p.Shutdown(ctx))
	}()

	for name, probe := range map[string]string{
		"mock-metrics":    p.MockURL + "/health",
		"service-metrics": p.ServiceURL + "/health",
		"prometheus":      p.PrometheusURL + "/-/ready",
		"alertmanager":    p.AlertmanagerURL + "/-/ready",
	} {
		u, err := url.Parse(probe)
		require.NoError(t, err)
		for _, host := range []string{"127.0.0.1", "[::1]"} {
			u.Host = host + ":" + u.Port()
			resp, err := http.Get(u.String())
			require.NoError(t, err, "%s on %s", name, u.Host)
			resp.Body.Close()
			assert.Equal(t, http.StatusOK, resp.StatusCode, "%s on %s", name, u.Host)
		}
	}
}
