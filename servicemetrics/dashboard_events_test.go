package servicemetrics_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/internal/testutil"
)

// apiGETs reads from the service's /metrics how many GET requests its
// REST API has served.
func apiGETs(t *testing.T, base string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := parser.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	n := 0.0
	for _, m := range mfs["http_requests_total"].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["handler"] == "/api" && labels["method"] == "get" {
			n += m.GetCounter().GetValue()
		}
	}
	return n
}

// TestDashboardEventBurst: 200 incidents opened in a burst reach an open
// dashboard as live events; the page patches itself from them and refetches
// its tables at most once a second, not three requests per event.
func TestDashboardEventBurst(t *testing.T) {
	ctx := testutil.Browser(t, 1280, 900, 90*time.Second)
	_, srv, _ := start(t)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.CSS(`#conn.up`))))

	const n = 200
	before := apiGETs(t, srv.URL)
	start := time.Now()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			body := fmt.Sprintf(`{"title":"burst %d","severity":"warning","source":"burst"}`, i)
			resp, err := http.Post(srv.URL+"/api/incidents", "application/json", strings.NewReader(body))
			if assert.NoError(t, err) {
				resp.Body.Close()
				assert.Equal(t, http.StatusCreated, resp.StatusCode)
			}
		}()
	}
	wg.Wait()
	// Every event reached the page (the list keeps the latest 50).
	require.NoError(t, chromedp.Do(ctx, chromedp.Poll[chromedp.Void](
		`[...document.querySelectorAll("#events li")].filter(li => li.textContent.includes("burst")).length >= 50`,
		chromedp.WithPollingTimeout(30*time.Second))))
	// Let the last scheduled refetch (at most 1 s away) happen.
	testutil.Eventually(t, 10*time.Second, func() error {
		txt, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#byservice tbody`)))
		if err != nil {
			return err
		}
		if !strings.Contains(txt, "burst") {
			return fmt.Errorf("by-service table not refreshed yet: %q", txt)
		}
		return nil
	})
	elapsed := time.Since(start).Seconds()
	gets := apiGETs(t, srv.URL) - before
	// Three GETs per refetch (by-service, details, stats), at most one
	// refetch a second, plus the page's own 10 s refresh.
	limit := 3*(elapsed+2) + 3*(elapsed/10+1)
	assert.LessOrEqual(t, gets, limit, "%v API GETs in %.1fs for %d events", gets, elapsed, n)
	t.Logf("%d events, %.0f API GETs from the page in %.1f s", n, gets, elapsed)
}
