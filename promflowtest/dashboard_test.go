package promflowtest_test

import (
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/internal/testutil"
	"github.com/promflow/promflow/promquery"
)

// TestDashboardInBrowser opens service-metrics' dashboard in a real headless
// Chromium: live metric tiles arrive over the WebSocket, the incident tables
// fill from the REST API, and an incident opened through the API shows up
// as a live event without a reload.
func TestDashboardInBrowser(t *testing.T) {
	p := startPipeline(t)
	ctx := testutil.Browser(t, 1280, 900, 90*time.Second)

	resp, err := http.Post(p.MockURL+"/simulate/memory-usage/78", "text/plain", nil)
	require.NoError(t, err)
	resp.Body.Close()

	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(p.ServiceURL+"/"),
		chromedp.WaitVisible(chromedp.CSS(`#conn.up`)),
		chromedp.WaitVisible(chromedp.CSS(`#tiles .tile[data-query="mock_high_memory_usage_bytes"]`)),
		// The value simulated on mock-metrics, scraped by Prometheus and
		// polled by service-metrics, is drawn in its tile.
		chromedp.Poll[chromedp.Void](`document.querySelector('#tiles .tile[data-query="mock_high_memory_usage_bytes"] .value').textContent === "78"`, chromedp.WithPollingTimeout(30*time.Second)),
	))
	status, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#conn`)))
	require.NoError(t, err)
	assert.Equal(t, "live", status)
	tiles, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#tiles`)))
	require.NoError(t, err)
	for _, name := range []string{"prometheus_tsdb_head_series", "prometheus_engine_queries", "http_requests_total", "mock_high_memory_usage_bytes"} {
		assert.Contains(t, tiles, name)
	}

	// An incident opened through the API reaches the page as a live event
	// and in the tables.
	resp, err = http.Post(p.ServiceURL+"/api/incidents", "application/json",
		strings.NewReader(`{"title":"checkout latency","severity":"critical","source":"checkout"}`))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)

	require.NoError(t, chromedp.Do(ctx,
		chromedp.Poll[chromedp.Void](`document.querySelector("#events").textContent.includes("checkout latency")`, chromedp.WithPollingTimeout(30*time.Second)),
		chromedp.Poll[chromedp.Void](`document.querySelector("#details tbody").textContent.includes("checkout latency")`, chromedp.WithPollingTimeout(30*time.Second)),
	))
	text := func(sel string) string {
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		require.NoError(t, err)
		return s
	}
	events, bySvc, details := text(`#events`), text(`#byservice tbody`), text(`#details tbody`)
	assert.Contains(t, events, "checkout latency")
	assert.Contains(t, bySvc, "checkout")
	assert.Contains(t, details, "checkout latency")

	// After a reload the charts start from range_metrics (the last poll
	// intervals from Prometheus), not from a single point: once Prometheus
	// holds several samples, the tile has several points as soon as it is
	// drawn, before as many polls could have brought them.
	prom, err := promquery.New(p.PrometheusURL, promquery.Options{})
	require.NoError(t, err)
	defer prom.Close()
	testutil.Eventually(t, 30*time.Second, func() error {
		now := time.Now()
		m, _, err := prom.Matrix(ctx, "mock_high_memory_usage_bytes", promquery.Range{Start: now.Add(-time.Minute), End: now, Step: time.Second})
		if err != nil {
			return err
		}
		if len(m) == 0 || len(m[0].Values) < 8 {
			return errors.New("Prometheus has fewer than 8 points of mock_high_memory_usage_bytes")
		}
		return nil
	})
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS(`#tiles .tile[data-query="mock_high_memory_usage_bytes"]`)),
	))
	// Within 1.5 s of the reload (at most two more polls of one point
	// each) the chart has at least 5 points ...
	const tile = `document.querySelector('#tiles .tile[data-query="mock_high_memory_usage_bytes"]')`
	points, err := chromedp.Run(ctx, chromedp.Poll[int](`Number(`+tile+`.dataset.points || 0) >= 5 && Number(`+tile+`.dataset.points)`,
		chromedp.WithPollingTimeout(1500*time.Millisecond)))
	require.NoError(t, err, "a chart with 5 or more points right after a reload")
	assert.GreaterOrEqual(t, points, 5)
	// ... and two frames later (well before the next poll redraws the
	// tile) they are drawn: the canvas has painted pixels. A frame queued
	// by the first message must not wipe what the range message drew.
	painted, err := chromedp.Run(ctx, chromedp.Evaluate[int](`new Promise(done => requestAnimationFrame(() => requestAnimationFrame(() => {
		const c = `+tile+`.querySelector("canvas");
		const px = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
		let n = 0;
		for (let i = 3; i < px.length; i += 4) if (px[i] !== 0) n++;
		done(n);
	})))`, chromedp.EvalAwaitPromise))
	require.NoError(t, err)
	assert.Positive(t, painted, "pixels drawn in the chart")

	if path := os.Getenv("PROMFLOW_SCREENSHOT"); path != "" {
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(path, png, 0o644))
	}
}
