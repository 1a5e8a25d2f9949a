package servicemetrics_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/internal/testutil"
	"github.com/promflow/promflow/servicemetrics"
)

// TestCompressionConfig: by default the WebSocket negotiates no
// extension, even with a client that offers permessage-deflate; with
// Config.Compression it negotiates permessage-deflate without context
// takeover and the client reads the service's messages.
func TestCompressionConfig(t *testing.T) {
	for _, on := range []bool{false, true} {
		t.Run(fmt.Sprintf("compression=%v", on), func(t *testing.T) {
			_, srv, _ := startConfig(t, func(c *servicemetrics.Config) { c.Compression = on })
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/ws",
				&websocket.DialOptions{CompressionMode: websocket.CompressionNoContextTakeover})
			require.NoError(t, err)
			defer c.CloseNow()
			c.SetReadLimit(-1)
			ext := resp.Header.Get("Sec-WebSocket-Extensions")
			if !on {
				assert.Empty(t, ext)
			} else {
				assert.Equal(t, "permessage-deflate; client_no_context_takeover; server_no_context_takeover", ext)
			}
			// The snapshots follow the client's first message.
			require.NoError(t, c.Write(ctx, websocket.MessageText, []byte(`{"type":"subscribe","channel":"metrics"}`)))
			for seen := map[string]bool{}; !seen["instant_metrics"] || !seen["range_metrics"]; {
				_, b, err := c.Read(ctx)
				require.NoError(t, err)
				var m struct{ Type string }
				require.NoError(t, json.Unmarshal(b, &m), "%s", b)
				seen[m.Type] = true
			}
		})
	}
}

// compressionPage opens the service's WebSocket and records the
// negotiated extensions, the size of the first instant_metrics and
// range_metrics it decodes, and the ack of a 2 KB message it sends
// (which Chromium compresses).
const compressionPage = `<!doctype html><title>compression</title><script>
window.result = {};
const ws = new WebSocket(%q);
ws.onopen = () => {
  result.ext = ws.extensions || "none";
  ws.send(JSON.stringify({type: "hello", pad: "x".repeat(2000)}));
};
ws.onmessage = e => {
  const m = JSON.parse(e.data);
  if ((m.type === "instant_metrics" || m.type === "range_metrics") && !result[m.type]) result[m.type] = "json";
  if (m.type === "ack") result.ack = m.requestType;
};
ws.onerror = () => { result.error = "error"; };
</script>`

// TestBrowserCompression: Chromium negotiates permessage-deflate with a
// service whose Config.Compression is on (its offer carries
// client_max_window_bits), decodes the hub's compressed frames into the
// service's JSON messages, and the service decodes Chromium's compressed
// message.
func TestBrowserCompression(t *testing.T) {
	chromium := testutil.Chromium(t)
	_, svc, _ := startConfig(t, func(c *servicemetrics.Config) { c.Compression = true })
	wsURL := "ws" + strings.TrimPrefix(svc.URL, "http") + "/ws"
	ui := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, compressionPage, wsURL)
	}))
	defer ui.Close()
	got := browseUntil(t, chromium, strings.Replace(ui.URL, "127.0.0.1", "localhost", 1),
		`window.result && (result.error || (result.ext && result.ack && result.instant_metrics && result.range_metrics)) && result`)
	assert.Equal(t, map[string]string{
		"ext":             "permessage-deflate; client_no_context_takeover; server_no_context_takeover",
		"ack":             "hello",
		"instant_metrics": "json",
		"range_metrics":   "json",
	}, got)
}

// browseUntil opens url in a headless Chromium and returns the value of
// the JavaScript expression cond once it is truthy.
func browseUntil(t *testing.T, chromium, url, cond string) map[string]string {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(allocCtx)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 60*time.Second)
	defer cancelT()
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(url)))
	got, err := chromedp.Run(ctx, chromedp.Poll[map[string]string](cond, chromedp.WithPollingTimeout(30*time.Second)))
	require.NoError(t, err)
	return got
}
