package servicemetrics_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/incidents"
	"github.com/promflow/promflow/internal/testutil"
	"github.com/promflow/promflow/promflowtest"
	"github.com/promflow/promflow/servicemetrics"
)

// newBrowser starts a headless Chromium with a 1440 × 900 viewport; it is
// stopped at cleanup.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	chromium := testutil.Chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1440, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	ctx, cancelT := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelT(); cancel(); cancelAlloc() })
	require.NoError(t, chromedp.Do(ctx, chromedp.EmulateViewport(1440, 900)))
	return ctx
}

// artifactDir is $PROMFLOW_ARTIFACTS (created if needed), else a
// temporary directory of the test.
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("PROMFLOW_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	return dir
}

// assertDistinctLabels checks the y-axis labels a chart drew ("a|b|c"):
// at least two, each different (ticks closer than the label's precision
// would repeat a label).
func assertDistinctLabels(t *testing.T, joined, what string) {
	t.Helper()
	labels := strings.Split(joined, "|")
	require.GreaterOrEqual(t, len(labels), 2, "%s: labels %q", what, joined)
	seen := map[string]bool{}
	for _, l := range labels {
		assert.False(t, seen[l], "%s: label %q twice in %q", what, l, joined)
		seen[l] = true
	}
	t.Logf("%s: %s", what, joined)
}

// screenshot saves the whole page as name.png in the artifact directory
// and logs its path.
func screenshot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	path := filepath.Join(dir, name+".png")
	require.NoError(t, os.WriteFile(path, png, 0o644))
	t.Logf("screenshot: %s", path)
}

// viewportShot scrolls the element of sel to the top and saves what the
// viewport shows as name.png.
func viewportShot(t *testing.T, ctx context.Context, dir, name, sel string) {
	t.Helper()
	require.NoError(t, chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`document.querySelector(`+strconv.Quote(sel)+`).scrollIntoView({block: "start"})`)))
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	require.NoError(t, err)
	path := filepath.Join(dir, name+".png")
	require.NoError(t, os.WriteFile(path, png, 0o644))
	t.Logf("screenshot: %s", path)
}

// noHorizontalOverflow asserts that the page does not scroll sideways at
// the current viewport.
func noHorizontalOverflow(t *testing.T, ctx context.Context, viewport string) {
	t.Helper()
	got, err := chromedp.Run(ctx, chromedp.Evaluate[[]int](`[document.documentElement.scrollWidth, window.innerWidth]`))
	require.NoError(t, err)
	assert.LessOrEqual(t, got[0], got[1], "%s: page is %d px wide in a %d px viewport", viewport, got[0], got[1])
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	require.NoError(t, err, js)
	return v
}

func waitJS(t *testing.T, ctx context.Context, js string, timeout time.Duration) {
	t.Helper()
	require.NoError(t, chromedp.Do(ctx, chromedp.Poll[chromedp.Void](js, chromedp.WithPollingTimeout(timeout))), js)
}

const diskTile = `document.querySelector('#tiles .tile[data-query="mock_disk_usage_percent"]')`

// colourPixels counts the pixels of the disk chart near an RGB colour
// (within 40 per channel), in rows y0..y1 of the canvas (device pixels;
// -1: all rows).
func colourPixels(t *testing.T, ctx context.Context, r, g, b, y0, y1 int) int {
	t.Helper()
	return eval[int](t, ctx, fmt.Sprintf(`(() => {
		const c = %s.querySelector("canvas");
		let y0 = %d, y1 = %d;
		if (y0 < 0) { y0 = 0; y1 = c.height - 1; }
		const px = c.getContext("2d").getImageData(0, y0, c.width, y1 - y0 + 1).data;
		let n = 0;
		for (let i = 0; i < px.length; i += 4)
			if (px[i+3] > 128 && Math.abs(px[i]-%d) < 40 && Math.abs(px[i+1]-%d) < 40 && Math.abs(px[i+2]-%d) < 40) n++;
		return n;
	})()`, diskTile, y0, y1, r, g, b))
}

// lowContrastJS lists the visible text elements whose colour on their
// background is below WCAG AA (4.5:1, or 3:1 for large text).
const lowContrastJS = `(() => {
	const parse = (c) => { const m = /rgba?\(([^)]+)\)/.exec(c); if (!m) return null; const p = m[1].split(",").map(Number); return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 }; };
	const lum = ({ r, g, b }) => { const f = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4); }; return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
	const bgOf = (e) => { for (; e; e = e.parentElement) { const c = parse(getComputedStyle(e).backgroundColor); if (c && c.a > 0.5) return c; } return { r: 255, g: 255, b: 255 }; };
	const low = [], seen = new Set();
	const w = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
	while (w.nextNode()) {
		const n = w.currentNode, e = n.parentElement;
		if (!n.textContent.trim() || seen.has(e)) continue;
		seen.add(e);
		if (e.closest("[hidden], .sr-only, button:disabled, dialog:not([open])") || e.getClientRects().length === 0) continue;
		const cs = getComputedStyle(e), fg = parse(cs.color), bg = bgOf(e);
		const l1 = lum(fg), l2 = lum(bg), ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
		const size = parseFloat(cs.fontSize), large = size >= 24 || (Number(cs.fontWeight) >= 700 && size >= 18.66);
		if (ratio < (large ? 3 : 4.5)) low.push(e.tagName + "." + e.className + " " + JSON.stringify(n.textContent.trim().slice(0, 30)) + " " + ratio.toFixed(2));
	}
	return low;
})()`

// TestDashboardActsOnAlerts runs the whole pipeline (mock-metrics,
// Prometheus with the shipped rules, Alertmanager, service-metrics) and
// opens the dashboard in Chromium: disk sda at 96 % and sdb at 60 % are two
// lines of one chart with the DiskUsageHigh threshold (90 %) drawn; the
// firing alert is listed with the incident Alertmanager opened;
// acknowledging it from the page changes it in PostgreSQL and on the page;
// the page does not scroll sideways at 1440 × 900 nor at 390 × 844.
func TestDashboardActsOnAlerts(t *testing.T) {
	ctx := newBrowser(t)
	p := promflowtest.Pipeline(t, promflowtest.PipelineOptions{})
	for _, route := range []string{"/simulate/disk-usage/sda/96", "/simulate/disk-usage/sdb/60"} {
		require.NoError(t, p.Simulate(ctx, route))
	}
	dir := artifactDir(t)

	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(p.ServiceURL+"/"), chromedp.WaitVisible(chromedp.CSS(`#conn.up`))))

	// Two series, two lines, one legend entry each; never a sum.
	waitJS(t, ctx, diskTile+` && `+diskTile+`.dataset.series === "2" && `+diskTile+`.textContent.includes("sdb")`, 60*time.Second)
	legend := eval[[]string](t, ctx, `[...`+diskTile+`.querySelectorAll(".legend li[data-series-id]")].map(li => li.textContent)`)
	require.Len(t, legend, 2)
	assert.Contains(t, strings.Join(legend, "|"), "device=sda")
	assert.Contains(t, strings.Join(legend, "|"), "96 %")
	assert.Contains(t, strings.Join(legend, "|"), "60 %")
	assert.NotContains(t, eval[string](t, ctx, diskTile+`.textContent`), "156", "no sum of the series")
	assert.Equal(t, "96", eval[string](t, ctx, diskTile+`.querySelector(".value").textContent`))
	assert.Equal(t, "%", eval[string](t, ctx, diskTile+`.querySelector(".unit").textContent`))
	// Both lines are painted: the first two palette colours.
	assert.Positive(t, colourPixels(t, ctx, 0x58, 0xa6, 0xff, -1, -1), "pixels of the first series' line")
	assert.Positive(t, colourPixels(t, ctx, 0xf0, 0x88, 0x3e, -1, -1), "pixels of the second series' line")

	// The rule's threshold, from Prometheus' rules through the alerts
	// topic, is drawn as a line at its row.
	waitJS(t, ctx, diskTile+`.dataset.thresholdDrawn === "true"`, 30*time.Second)
	assertDistinctLabels(t, eval[string](t, ctx, diskTile+`.querySelector("canvas").dataset.yLabels`), "disk tile axis")
	assert.Equal(t, "90", eval[string](t, ctx, diskTile+`.dataset.threshold`))
	row := eval[int](t, ctx, `Math.round(Number(`+diskTile+`.dataset.thresholdRows) * (window.devicePixelRatio || 1))`)
	assert.Greater(t, colourPixels(t, ctx, 0xff, 0x4d, 0x4d, row-1, row+1), 50, "threshold line pixels at row %d", row)

	// The firing alert, linked to the incident Alertmanager opened.
	const alertItem = `document.querySelector('#alerts li[data-alertname="DiskUsageHigh"]')`
	waitJS(t, ctx, alertItem+` && `+alertItem+`.dataset.incidentId`, 90*time.Second)
	id := eval[string](t, ctx, alertItem+`.dataset.incidentId`)
	assert.Contains(t, eval[string](t, ctx, alertItem+`.textContent`), "device=sda")
	assert.NotContains(t, eval[string](t, ctx, `document.querySelector("#alerts").textContent`), "device=sdb", "sdb is below the threshold")
	in, err := p.Service.Store().Get(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, incidents.StatusOpen, in.Status)
	assert.Equal(t, "storage", in.Source)

	// Analytics: served by the incidents routes when this build has them,
	// else the view says plainly that it is unavailable.
	resp, err := http.Get(p.ServiceURL + "/api/metrics/incidents/breakdown?group_by=service")
	require.NoError(t, err)
	resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		waitJS(t, ctx, `document.querySelector("#analytics").dataset.state === "unavailable"`, 30*time.Second)
		assert.Contains(t, eval[string](t, ctx, `document.querySelector("#analytics-state").textContent`), "Analytics unavailable")
	} else {
		require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#analytics button[data-window="30d"]`))))
		waitJS(t, ctx, `document.querySelector("#analytics").dataset.state === "ok" && document.querySelector('#analytics-table tr[data-key="storage"]')`, 30*time.Second)
		assert.Equal(t, "true", eval[string](t, ctx, `document.querySelector('#analytics button[data-window="30d"]').getAttribute("aria-pressed")`))
		assert.Positive(t, eval[int](t, ctx, `Number(document.querySelector("#trend").dataset.buckets)`))
		// One alert-backed incident: a flat MTTD of milliseconds, whose
		// axis ticks are fractions of a millisecond apart.
		waitJS(t, ctx, `(document.querySelector("#trend").dataset.yLabels || "") !== ""`, 30*time.Second)
		assertDistinctLabels(t, eval[string](t, ctx, `document.querySelector("#trend").dataset.yLabels`), "trend axis")
	}
	t.Logf("analytics view: %s (breakdown route answered %d)", eval[string](t, ctx, `document.querySelector("#analytics").dataset.state`), resp.StatusCode)

	noHorizontalOverflow(t, ctx, "1440 × 900")
	assert.Empty(t, eval[[]string](t, ctx, lowContrastJS), "text below WCAG AA contrast")
	assert.Empty(t, eval[[]string](t, ctx, `[...document.querySelectorAll("th:not([scope])")].map(th => th.textContent)`), "table headers without scope")
	assert.Empty(t, eval[[]string](t, ctx, `[...document.querySelectorAll("button")].filter(b => !(b.getAttribute("aria-label") || b.textContent.trim())).map(b => b.outerHTML)`), "buttons without a label")
	// Some history for the screenshot (one point a second).
	waitJS(t, ctx, `Number(`+diskTile+`.dataset.points) >= 15`, 30*time.Second)
	screenshot(t, ctx, dir, "dashboard-1440x900")

	// Acknowledge from the details table.
	rowSel := `#incident-` + id
	waitJS(t, ctx, `document.querySelector('`+rowSel+` button[data-action="acknowledge"]')`, 30*time.Second)
	label := eval[string](t, ctx, `document.querySelector('`+rowSel+` button[data-action="acknowledge"]').getAttribute("aria-label")`)
	assert.Contains(t, label, "Acknowledge incident")
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(rowSel+` button[data-action="acknowledge"]`))))
	waitJS(t, ctx, `document.querySelector('`+rowSel+` td.status').textContent === "acknowledged"`, 10*time.Second)
	testutil.Eventually(t, 10*time.Second, func() error {
		in, err := p.Service.Store().Get(ctx, id)
		if err != nil {
			return err
		}
		if in.Status != incidents.StatusAcknowledged {
			return fmt.Errorf("status %s in PostgreSQL", in.Status)
		}
		return nil
	})
	// The answer of the POST (the row may have changed before it, from the
	// incident event) is shown.
	waitJS(t, ctx, `document.querySelector("#toast").textContent.includes("acknowledged")`, 10*time.Second)
	waitJS(t, ctx, alertItem+`.querySelector(".inc-link").textContent.includes("acknowledged")`, 10*time.Second)
	// The row offers what an acknowledged incident can do next.
	assert.Equal(t, []string{"resolve"}, eval[[]string](t, ctx, `[...document.querySelectorAll('`+rowSel+` button.act')].map(b => b.dataset.action)`))

	// A phone.
	require.NoError(t, chromedp.Do(ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateScale(2))))
	waitJS(t, ctx, `window.innerWidth === 390`, 5*time.Second)
	// Redrawn for the phone's width and pixel ratio.
	waitJS(t, ctx, `(() => { const c = `+diskTile+`.querySelector("canvas"); return c.width === Math.round(c.clientWidth * devicePixelRatio) && c.clientWidth < 390; })()`, 5*time.Second)
	noHorizontalOverflow(t, ctx, "390 × 844")
	screenshot(t, ctx, dir, "dashboard-390x844")
	viewportShot(t, ctx, dir, "dashboard-390x844-top", "header")
	viewportShot(t, ctx, dir, "dashboard-390x844-disk", `#tiles .tile[data-query="mock_disk_usage_percent"]`)
	viewportShot(t, ctx, dir, "dashboard-390x844-incidents", "#details")
}

// TestDashboardDegraded: with Prometheus stopped the badge says degraded
// and why, and the tiles show a short error state, not the raw error; once
// Prometheus is back the badge says live again.
func TestDashboardDegraded(t *testing.T) {
	ctx := newBrowser(t)
	_, srv, prom := start(t)
	defer func() { _ = prom.Stop() }()
	dir := artifactDir(t)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.CSS(`#conn.up`))))
	waitJS(t, ctx, `document.querySelectorAll("#tiles .tile").length >= 3`, 30*time.Second)

	require.NoError(t, prom.Stop())
	waitJS(t, ctx, `document.querySelector("#conn").textContent === "degraded" && document.querySelector("#conn-reason").textContent.includes("Prometheus")`, 30*time.Second)
	reason := eval[string](t, ctx, `document.querySelector("#conn-reason").textContent`)
	t.Logf("badge: degraded, %s", reason)
	waitJS(t, ctx, `document.querySelectorAll("#tiles .tile.error").length >= 3`, 30*time.Second)
	for _, txt := range eval[[]string](t, ctx, `[...document.querySelectorAll("#tiles .tile.error .value")].map(e => e.textContent)`) {
		assert.Equal(t, "Prometheus unreachable", txt)
	}
	assert.NotContains(t, eval[string](t, ctx, `document.querySelector("#tiles").textContent`), "dial tcp", "no raw error text")
	waitJS(t, ctx, `document.querySelector("#alerts").textContent.includes("Alerts unavailable")`, 30*time.Second)
	noHorizontalOverflow(t, ctx, "1440 × 900")
	screenshot(t, ctx, dir, "dashboard-degraded-1440x900")

	prom.Restart()
	waitJS(t, ctx, `document.querySelector("#conn").textContent === "live"`, 60*time.Second)
}

// TestDashboardWriteToken: with a write token configured, an action from
// the page answers 401, the page asks for the token once, keeps it in the
// tab's sessionStorage and retries; the next action uses it without
// asking. A refused action shows the API's error plainly.
func TestDashboardWriteToken(t *testing.T) {
	ctx := newBrowser(t)
	svc, srv, _ := startConfig(t, func(c *servicemetrics.Config) { c.WriteToken = "s3cret-token" })
	dir := artifactDir(t)
	in, err := svc.Store().Open(ctx, incidents.NewIncident{Title: "payments 5xx", Source: "payments", Severity: "critical"})
	require.NoError(t, err)
	rowSel := `#incident-` + in.ID

	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.CSS(rowSel+` button[data-action="acknowledge"]`))))
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(rowSel+` button[data-action="acknowledge"]`))))
	require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`#token-dialog[open] #token-input`))))
	screenshot(t, ctx, dir, "dashboard-token-dialog")
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`#token-input`), "s3cret-token"),
		chromedp.Click(chromedp.CSS(`#token-save`)),
	))
	waitJS(t, ctx, `document.querySelector('`+rowSel+` td.status').textContent === "acknowledged"`, 10*time.Second)
	got, err := svc.Store().Get(ctx, in.ID)
	require.NoError(t, err)
	assert.Equal(t, incidents.StatusAcknowledged, got.Status)
	assert.Equal(t, "s3cret-token", eval[string](t, ctx, `sessionStorage.getItem("promflow.writeToken")`))

	// The next write sends the kept token: no dialog.
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(rowSel+` button[data-action="resolve"]`))))
	waitJS(t, ctx, `document.querySelector('`+rowSel+` td.status').textContent === "resolved"`, 10*time.Second)
	assert.False(t, eval[bool](t, ctx, `document.querySelector("#token-dialog").open`))

	// An action the API refuses (409: already resolved, from another
	// client meanwhile) shows its error text.
	_, err = svc.Store().Reopen(ctx, in.ID)
	require.NoError(t, err)
	_, err = svc.Store().Resolve(ctx, in.ID)
	require.NoError(t, err)
	waitJS(t, ctx, `document.querySelector('`+rowSel+` button[data-action="reopen"]')`, 10*time.Second)
	require.NoError(t, chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`act(`+"`"+in.ID+"`"+`, "resolve")`)))
	waitJS(t, ctx, `document.querySelector("#toast").classList.contains("error")`, 10*time.Second)
	msg := eval[string](t, ctx, `document.querySelector("#toast").textContent`)
	assert.Contains(t, msg, "Could not resolve incident")
	assert.Contains(t, msg, "HTTP 409")
	t.Logf("error shown: %s", msg)
	resp, err := http.Get(srv.URL + "/app.js")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, "text/javascript; charset=utf-8", resp.Header.Get("Content-Type"))
}

// TestDashboardDatabaseDown: with PostgreSQL unreachable the badge says
// degraded because of it, and the incident tables say the incidents are
// unavailable instead of staying empty.
func TestDashboardDatabaseDown(t *testing.T) {
	ctx := newBrowser(t)
	port := testutil.FreePort(t)
	pool, err := pgxpool.New(ctx, fmt.Sprintf("postgres://promflow@127.0.0.1:%d/none?connect_timeout=1", port))
	require.NoError(t, err)
	defer pool.Close()
	prom := promflowtest.Prometheus(t, promflowtest.PrometheusOptions{})
	svc, err := servicemetrics.New(ctx, servicemetrics.Config{PrometheusURL: prom.URL, Pool: pool, PollInterval: 200 * time.Millisecond, Logger: quietLogger})
	require.NoError(t, err)
	srv := httptest.NewServer(svc)
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, svc.Shutdown(sctx))
		srv.Close()
		http.DefaultClient.CloseIdleConnections()
	}()

	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/")))
	waitJS(t, ctx, `document.querySelector("#conn").textContent === "degraded" && document.querySelector("#conn-reason").textContent.includes("PostgreSQL")`, 30*time.Second)
	waitJS(t, ctx, `document.querySelector("#details tbody").textContent.includes("Incidents unavailable")`, 30*time.Second)
	t.Logf("badge: degraded, %s", eval[string](t, ctx, `document.querySelector("#conn-reason").textContent`))
	assert.NotContains(t, eval[string](t, ctx, `document.querySelector("#conn-reason").textContent`), "Prometheus")
	screenshot(t, ctx, artifactDir(t), "dashboard-postgres-down-1440x900")
}
