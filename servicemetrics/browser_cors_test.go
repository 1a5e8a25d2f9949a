package servicemetrics_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/internal/testutil"
	"github.com/promflow/promflow/servicemetrics"
)

// crossOriginPage is the original web UI's situation: a page served from
// another origin (http://localhost:PORT, standing in for :3000) calls the
// REST API and opens the WebSocket of service-metrics on 127.0.0.1.
const crossOriginPage = `<!doctype html><title>web-ui</title><script>
window.result = {};
fetch(%[1]q + "/api/metrics/incidents/by-service")
  .then(r => r.json()).then(b => { result.fetch = b.status; })
  .catch(e => { result.fetch = "blocked"; });
const ws = new WebSocket(%[2]q);
ws.onmessage = e => { result.ws = JSON.parse(e.data).type; ws.close(); };
ws.onerror = () => { result.ws = result.ws || "blocked"; };
</script>`

// TestBrowserCrossOrigin: in Chromium, with the default settings the page
// from another origin reads the API and gets the WebSocket welcome; with
// CORSOrigins and AllowedOrigins set to a third origin, the browser blocks
// both.
func TestBrowserCrossOrigin(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*servicemetrics.Config)
		want map[string]string
	}{
		{"defaults", nil, map[string]string{"fetch": "success", "ws": "connection"}},
		{"other origin only", func(c *servicemetrics.Config) {
			c.CORSOrigins = []string{"https://ui.example.com"}
			c.AllowedOrigins = []string{"https://ui.example.com"}
		}, map[string]string{"fetch": "blocked", "ws": "blocked"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, svc, _ := startConfig(t, tc.edit)
			wsURL := "ws" + strings.TrimPrefix(svc.URL, "http") + "/ws"
			ui := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				fmt.Fprintf(w, crossOriginPage, svc.URL, wsURL)
			}))
			defer ui.Close()
			// localhost, not 127.0.0.1: another origin than the service's.
			page := strings.Replace(ui.URL, "127.0.0.1", "localhost", 1)

			got := browse(t, page)
			assert.Equal(t, tc.want, got)
		})
	}
}

// browse opens url in a headless Chromium and returns window.result once
// it has both entries.
func browse(t *testing.T, url string) map[string]string {
	t.Helper()
	ctx := testutil.Browser(t, 1280, 900, 60*time.Second)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(url)))
	got, err := chromedp.Run(ctx, chromedp.Poll[map[string]string](`window.result && result.fetch && result.ws && result`,
		chromedp.WithPollingTimeout(30*time.Second)))
	require.NoError(t, err)
	return got
}
