package broadcast

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/promflow/promflow/internal/testutil"
)

const testTimeout = 30 * time.Second

// startHub serves a new hub on a loopback HTTP server; both are shut down at
// cleanup, and no goroutine may be left behind.
// The topics of the hub's tests: the shape service-metrics uses.
const (
	TopicInstantMetrics = "instant_metrics"
	TopicRangeMetrics   = "range_metrics"
	TopicIncident       = "incident"
)

var quietLogger = slog.New(slog.DiscardHandler)

var testTopics = []Topic{
	{Name: TopicInstantMetrics, Kind: SnapshotTopic},
	{Name: TopicRangeMetrics, Kind: SnapshotTopic},
	{Name: TopicIncident, Kind: EventTopic},
}

// newHub is NewHub with the test topics (when opts has none); it fails the
// test on error.
func newHub(t testing.TB, opts HubOptions) *Hub {
	t.Helper()
	if opts.Topics == nil {
		opts.Topics = testTopics
	}
	h, err := NewHub(opts)
	require.NoError(t, err)
	return h
}

func startHub(t *testing.T, opts HubOptions) (*Hub, *httptest.Server) {
	t.Helper()
	return startHubPath(t, opts, false)
}

// startHubPath is startHub with the hub's write path chosen: portable
// makes every client's frameConn write through net.Conn, as where raw
// sends do not exist (see forEachWritePath).
func startHubPath(t *testing.T, opts HubOptions, portable bool) (*Hub, *httptest.Server) {
	t.Helper()
	// Taken before the hub and server exist: any goroutine started from here
	// on and still running after Shutdown and srv.Close is a leak.
	before := goleak.IgnoreCurrent()
	h := newHub(t, opts)
	h.portableWrites = portable
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		assert.NoError(t, h.Shutdown(ctx))
		srv.Close()
		goleak.VerifyNone(t, before)
	})
	return h, srv
}

// forEachWritePath runs test once per write path of the hub, as subtests
// "raw" (non-blocking send(2) first, where rawWrites) and "portable"
// (every write through net.Conn, the only path off Linux and on
// linux/386), so that every CI run tests the path other platforms use.
// Where raw sends do not exist "raw" would be the portable path again: it
// is skipped.
func forEachWritePath(t *testing.T, test func(t *testing.T, portable bool)) {
	t.Helper()
	for _, portable := range []bool{false, true} {
		name := "raw"
		if portable {
			name = "portable"
		}
		t.Run(name, func(t *testing.T) {
			if !portable && !rawWrites {
				t.Skip("no raw sends on this platform: the portable subtest covers it")
			}
			test(t, portable)
		})
	}
}

func wsURL(srv *httptest.Server) string { return "ws" + strings.TrimPrefix(srv.URL, "http") }

func dial(t testing.TB, srv *httptest.Server) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, _, err := websocket.Dial(ctx, wsURL(srv), nil)
	require.NoError(t, err)
	c.SetReadLimit(-1)
	t.Cleanup(func() { _ = c.CloseNow() })
	return c
}

// readRaw reads one text message.
func readRaw(t testing.TB, c *websocket.Conn) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	typ, b, err := c.Read(ctx)
	require.NoError(t, err)
	require.Equal(t, websocket.MessageText, typ)
	return string(b)
}

// readMsg reads one message and decodes it into a map.
func readMsg(t testing.TB, c *websocket.Conn) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	typ, b, err := c.Read(ctx)
	require.NoError(t, err)
	require.Equal(t, websocket.MessageText, typ)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m), "message %s", b)
	return m
}

func send(t testing.TB, c *websocket.Conn, s string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	require.NoError(t, c.Write(ctx, websocket.MessageText, []byte(s)))
}

// readClose reads until the connection ends and returns the close status.
func readClose(t testing.TB, c *websocket.Conn) (websocket.StatusCode, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	for {
		_, _, err := c.Read(ctx)
		if err != nil {
			var ce websocket.CloseError
			if errors.As(err, &ce) {
				return ce.Code, ce.Reason
			}
			t.Fatalf("connection ended without a close frame: %v", err)
		}
	}
}

func counterValue(t testing.TB, h *Hub, name string, labels ...string) float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(h))
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue metrics
				}
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

func TestConnectionMessageAndSnapshotOnConnect(t *testing.T) {
	h, srv := startHub(t, HubOptions{ConnectMessage: "hello there"})

	// Before any publish: only the connection message.
	c1 := dial(t, srv)
	m := readMsg(t, c1)
	assert.Equal(t, "connection", m["type"])
	assert.Equal(t, "hello there", m["message"])
	ts, err := time.Parse(time.RFC3339, m["timestamp"].(string))
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now(), ts, time.Minute)

	require.NoError(t, h.Publish(TopicInstantMetrics, map[string]any{"type": "instant_metrics", "n": 1}))
	require.NoError(t, h.Publish(TopicInstantMetrics, map[string]any{"type": "instant_metrics", "n": 2}))
	require.NoError(t, h.Publish(TopicRangeMetrics, map[string]any{"type": "range_metrics", "n": 3}))
	require.NoError(t, h.Publish(TopicIncident, map[string]any{"type": "incident", "n": 4}))

	// A new client gets the connection message and then, at once, the
	// latest snapshot of each snapshot topic, but no past events.
	c2 := dial(t, srv)
	assert.Equal(t, "connection", readMsg(t, c2)["type"])
	got := map[string]float64{}
	for range 2 {
		m := readMsg(t, c2)
		got[m["type"].(string)] = m["n"].(float64)
	}
	assert.Equal(t, map[string]float64{"instant_metrics": 2, "range_metrics": 3}, got)

	// An event published now reaches it.
	require.NoError(t, h.Publish(TopicIncident, map[string]any{"type": "incident", "n": 5}))
	assert.Equal(t, float64(5), readMsg(t, c2)["n"])
	assert.Equal(t, 2, h.Clients())
}

// TestWireFormat checks the exact bytes of the server's own messages, as the
// original's browser clients expect them.
func TestWireFormat(t *testing.T) {
	_, srv := startHub(t, HubOptions{})
	c := dial(t, srv)
	const ts = `"timestamp":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"`
	assert.Regexp(t, `^\{"type":"connection","message":"connected",`+ts+`\}$`, readRaw(t, c))
	send(t, c, `{"type":"getMetrics","extra":[1,2]}`)
	assert.Regexp(t, `^\{"type":"ack","requestType":"getMetrics",`+ts+`\}$`, readRaw(t, c))
	send(t, c, `{"type":"subscribe","topics":["nope"]}`)
	assert.Regexp(t, `^\{"type":"error","requestType":"subscribe","error":"unknown topic \\"nope\\"",`+ts+`\}$`, readRaw(t, c))
}

// countingMessage counts how often it is encoded.
type countingMessage struct{ calls *atomic.Int64 }

func (m countingMessage) MarshalJSON() ([]byte, error) {
	m.calls.Add(1)
	return []byte(`{"type":"incident","n":1}`), nil
}

func TestPublishEncodesOnce(t *testing.T) {
	h, srv := startHub(t, HubOptions{})
	cs := make([]*websocket.Conn, 5)
	for i := range cs {
		cs[i] = dial(t, srv)
		readMsg(t, cs[i])
	}
	var calls atomic.Int64
	require.NoError(t, h.Publish(TopicIncident, countingMessage{&calls}))
	for _, c := range cs {
		assert.Equal(t, `{"type":"incident","n":1}`, readRaw(t, c))
	}
	assert.Equal(t, int64(1), calls.Load(), "one encoding per publish, whatever the number of clients")
}

func TestPublishErrors(t *testing.T) {
	h := newHub(t, HubOptions{})
	require.ErrorIs(t, h.Publish("nope", 1), ErrUnknownTopic)
	require.ErrorIs(t, h.PublishRaw(TopicIncident, []byte("{not json")), ErrInvalidMessage)
	require.Error(t, h.Publish(TopicIncident, func() {}))
	require.NoError(t, h.Shutdown(context.Background()))
	require.ErrorIs(t, h.Publish(TopicIncident, 1), ErrClosed)
	require.NoError(t, h.Shutdown(context.Background()), "Shutdown is idempotent")
	require.NoError(t, h.Close(), "so is Close")
}

func TestNewHubRejectsBadTopics(t *testing.T) {
	for name, topics := range map[string][]Topic{
		"empty name": {{Name: "", Kind: EventTopic}},
		"bad kind":   {{Name: "a"}},
		"duplicate":  {{Name: "a", Kind: EventTopic}, {Name: "a", Kind: SnapshotTopic}},
		"too many":   make([]Topic, 65),
	} {
		t.Run(name, func(t *testing.T) {
			h, err := NewHub(HubOptions{Topics: topics})
			assert.Nil(t, h)
			assert.ErrorIs(t, err, ErrInvalidOptions)
		})
	}
}

func TestAckEcho(t *testing.T) {
	_, srv := startHub(t, HubOptions{})
	c := dial(t, srv)
	readMsg(t, c) // connection
	send(t, c, `{"type":"ping","payload":{"x":1}}`)
	m := readMsg(t, c)
	assert.Equal(t, "ack", m["type"])
	assert.Equal(t, "ping", m["requestType"])
	_, err := time.Parse(time.RFC3339, m["timestamp"].(string))
	assert.NoError(t, err)
}

func TestSubscribeUnsubscribe(t *testing.T) {
	h, srv := startHub(t, HubOptions{})
	require.NoError(t, h.PublishRaw(TopicInstantMetrics, []byte(`{"type":"instant_metrics","n":0}`)))
	c := dial(t, srv)
	readMsg(t, c) // connection
	assert.Equal(t, "instant_metrics", readMsg(t, c)["type"])

	// Narrow to incidents only.
	send(t, c, `{"type":"subscribe","topics":["incident"]}`)
	m := readMsg(t, c)
	assert.Equal(t, "ack", m["type"])
	assert.Equal(t, "subscribe", m["requestType"])
	require.NoError(t, h.PublishRaw(TopicInstantMetrics, []byte(`{"type":"instant_metrics","n":1}`)))
	require.NoError(t, h.PublishRaw(TopicIncident, []byte(`{"type":"incident","n":2}`)))
	m = readMsg(t, c)
	assert.Equal(t, "incident", m["type"], "instant_metrics must not arrive after narrowing")
	assert.Equal(t, float64(2), m["n"])

	// Unknown topic: error reply, nothing changes.
	send(t, c, `{"type":"subscribe","topics":["instant_metrics","bogus"]}`)
	m = readMsg(t, c)
	assert.Equal(t, "error", m["type"])
	assert.Contains(t, m["error"], "bogus")
	send(t, c, `{"type":"subscribe","topics":[]}`)
	assert.Equal(t, "error", readMsg(t, c)["type"])
	// Without "topics" (the original service's form, with "channel"): an
	// ack, and the subscription is unchanged.
	send(t, c, `{"type":"subscribe","channel":"metrics"}`)
	m = readMsg(t, c)
	assert.Equal(t, "ack", m["type"])
	assert.Equal(t, "subscribe", m["requestType"])

	// Adding a snapshot topic sends its latest message at once.
	send(t, c, `{"type":"subscribe","topics":["instant_metrics"]}`)
	assert.Equal(t, "ack", readMsg(t, c)["type"])
	m = readMsg(t, c)
	assert.Equal(t, "instant_metrics", m["type"])
	assert.Equal(t, float64(1), m["n"])

	// Unsubscribe from incidents.
	send(t, c, `{"type":"unsubscribe","topics":["incident"]}`)
	m = readMsg(t, c)
	assert.Equal(t, "ack", m["type"])
	assert.Equal(t, "unsubscribe", m["requestType"])
	require.NoError(t, h.PublishRaw(TopicIncident, []byte(`{"type":"incident","n":3}`)))
	require.NoError(t, h.PublishRaw(TopicInstantMetrics, []byte(`{"type":"instant_metrics","n":4}`)))
	m = readMsg(t, c)
	assert.Equal(t, "instant_metrics", m["type"])
	assert.Equal(t, float64(4), m["n"])
}

func TestBadClientMessagesCloseOnlyThatClient(t *testing.T) {
	h, srv := startHub(t, HubOptions{ReadLimit: 128})
	other := dial(t, srv)
	readMsg(t, other)

	cases := []struct {
		name string
		typ  websocket.MessageType
		msg  string
		code websocket.StatusCode
	}{
		{"not json", websocket.MessageText, `{"type":`, websocket.StatusInvalidFramePayloadData},
		{"no type", websocket.MessageText, `{"topics":[]}`, websocket.StatusInvalidFramePayloadData},
		{"type not a string", websocket.MessageText, `{"type":5}`, websocket.StatusInvalidFramePayloadData},
		{"array", websocket.MessageText, `[1,2]`, websocket.StatusInvalidFramePayloadData},
		{"binary", websocket.MessageBinary, `{"type":"x"}`, websocket.StatusUnsupportedData},
		{"oversized", websocket.MessageText, `{"type":"` + strings.Repeat("x", 200) + `"}`, websocket.StatusMessageTooBig},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, srv)
			readMsg(t, c)
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			require.NoError(t, c.Write(ctx, tc.typ, []byte(tc.msg)))
			code, reason := readClose(t, c)
			assert.Equal(t, tc.code, code, "reason %q", reason)
		})
	}
	// The other client is untouched.
	send(t, other, `{"type":"still-here"}`)
	assert.Equal(t, "still-here", readMsg(t, other)["requestType"])
	testutil.Eventually(t, testTimeout, func() error {
		rl := counterValue(t, h, "broadcast_clients_disconnected_total", "reason", "read_limit")
		pe := counterValue(t, h, "broadcast_clients_disconnected_total", "reason", "protocol_error")
		if rl != 1 || pe != 5 {
			return fmt.Errorf("read_limit %v (want 1), protocol_error %v (want 5)", rl, pe)
		}
		if n := h.Clients(); n != 1 {
			return fmt.Errorf("%d clients, want 1", n)
		}
		return nil
	})
}

func TestOrigin(t *testing.T) {
	// Entries as an operator writes them in a comma-separated setting:
	// spaces, capitals, an origin with its scheme; a malformed pattern is
	// dropped (logged), not a reason to refuse everyone.
	var logs strings.Builder
	_, srv := startHub(t, HubOptions{
		AllowedOrigins: []string{"dashboard.example.com", " *.Trusted.example", "https://app.example.org:443", "[bad", ""},
		Logger:         slog.New(slog.NewTextHandler(&logs, nil)),
	})
	assert.Contains(t, logs.String(), "bad pattern")
	host := strings.TrimPrefix(srv.URL, "http://")
	for _, tc := range []struct {
		origin string
		ok     bool
	}{
		{"", true},
		{"http://" + host, true},
		{"http://dashboard.example.com", true},
		{"https://dashboard.example.com:8443", true},
		{"https://a.trusted.example", true},
		{"https://app.example.org", true},
		{"https://app.example.org.evil.example", false},
		{"http://evil.example", false},
		{"http://dashboard.example.com.evil.example", false},
		{"null", false},
	} {
		t.Run(tc.origin, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			hdr := http.Header{}
			if tc.origin != "" {
				hdr.Set("Origin", tc.origin)
			}
			c, resp, err := websocket.Dial(ctx, wsURL(srv), &websocket.DialOptions{HTTPHeader: hdr})
			if tc.ok {
				require.NoError(t, err)
				_ = c.CloseNow()
				return
			}
			require.Error(t, err)
			require.NotNil(t, resp)
			assert.Equal(t, http.StatusForbidden, resp.StatusCode)
		})
	}
}

func TestRefusalsAreJSON(t *testing.T) {
	_, srv := startHub(t, HubOptions{})
	resp, err := http.Get(srv.URL)
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, http.StatusUpgradeRequired, resp.StatusCode)
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	var body struct{ Status, Error string }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	assert.Equal(t, "error", body.Status)
	assert.Contains(t, body.Error, "WebSocket upgrade")
}

func TestAuthorize(t *testing.T) {
	_, srv := startHub(t, HubOptions{Authorize: func(r *http.Request) error {
		switch r.URL.Query().Get("token") {
		case "good":
			return nil
		case "":
			return &HTTPError{Code: http.StatusUnauthorized, Message: "token required"}
		default:
			return errors.New("bad token")
		}
	}})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, _, err := websocket.Dial(ctx, wsURL(srv)+"?token=good", nil)
	require.NoError(t, err)
	_ = c.CloseNow()
	_, resp, err := websocket.Dial(ctx, wsURL(srv), nil)
	require.Error(t, err)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	_, resp, err = websocket.Dial(ctx, wsURL(srv)+"?token=bad", nil)
	require.Error(t, err)
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
}

func TestNotAnUpgrade(t *testing.T) {
	_, srv := startHub(t, HubOptions{})
	resp, err := http.Get(srv.URL)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUpgradeRequired, resp.StatusCode)

	r := httptest.NewRequest(http.MethodGet, "/", nil)
	assert.False(t, IsWebSocketUpgrade(r))
	r.Header.Set("Connection", "keep-alive, Upgrade")
	r.Header.Set("Upgrade", "WebSocket")
	assert.True(t, IsWebSocketUpgrade(r))
}

func TestConnectionCap(t *testing.T) {
	h, srv := startHub(t, HubOptions{MaxClients: 2})
	c1, c2 := dial(t, srv), dial(t, srv)
	readMsg(t, c1) // registered once the connection message is sent
	readMsg(t, c2)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, wsURL(srv), nil)
	require.Error(t, err)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, 2, h.Clients())

	// A slot frees up when a client leaves.
	require.NoError(t, c1.Close(websocket.StatusNormalClosure, "bye"))
	testutil.Eventually(t, testTimeout, func() error {
		if n := h.Clients(); n != 1 {
			return fmt.Errorf("%d clients", n)
		}
		return nil
	})
	dial(t, srv)
	assert.Equal(t, float64(1), counterValue(t, h, "broadcast_connections_refused_total", "reason", "capacity"))
}

func TestShutdownClosesWith1001(t *testing.T) {
	forEachWritePath(t, testShutdownClosesWith1001)
}

func testShutdownClosesWith1001(t *testing.T, portable bool) {
	before := goleak.IgnoreCurrent()
	h := newHub(t, HubOptions{})
	h.portableWrites = portable
	srv := httptest.NewServer(h)
	defer srv.Close()
	cs := []*websocket.Conn{dial(t, srv), dial(t, srv), dial(t, srv)}
	for _, c := range cs {
		readMsg(t, c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	shutdownDone := make(chan error, 1)
	go func() { shutdownDone <- h.Shutdown(ctx) }()
	for _, c := range cs {
		code, _ := readClose(t, c)
		assert.Equal(t, websocket.StatusGoingAway, code)
	}
	require.NoError(t, <-shutdownDone)
	assert.Equal(t, 0, h.Clients())
	assert.Equal(t, float64(3), counterValue(t, h, "broadcast_clients_disconnected_total", "reason", "shutdown"))

	// After Shutdown, upgrades are refused.
	_, resp, err := websocket.Dial(ctx, wsURL(srv), nil)
	require.Error(t, err)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	for _, c := range cs {
		_ = c.CloseNow()
	}
	srv.Close()
	goleak.VerifyNone(t, before)
}

// TestDeadPeerDetectedByKeepalive connects a raw TCP client that completes
// the handshake and then never answers anything, as a peer whose network
// vanished: the keepalive ping must find it out and remove it.
func TestDeadPeerDetectedByKeepalive(t *testing.T) {
	// A PingTimeout with room to spare: the live client must never miss it,
	// even on a loaded machine under -race.
	h, srv := startHub(t, HubOptions{PingInterval: 100 * time.Millisecond, PingTimeout: 3 * time.Second})

	// A live client answers pings (its reader handles control frames).
	var pings atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	alive, _, err := websocket.Dial(ctx, wsURL(srv), &websocket.DialOptions{
		OnPingReceived: func(context.Context, []byte) bool { pings.Add(1); return true },
	})
	require.NoError(t, err)
	defer alive.CloseNow()
	go func() {
		for {
			if _, _, err := alive.Read(context.Background()); err != nil {
				return
			}
		}
	}()

	nc, err := net.Dial("tcp", srv.Listener.Addr().String())
	require.NoError(t, err)
	defer nc.Close()
	_, err = fmt.Fprintf(nc, "GET / HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", srv.Listener.Addr())
	require.NoError(t, err)
	buf := make([]byte, 12)
	require.NoError(t, nc.SetReadDeadline(time.Now().Add(testTimeout)))
	_, err = io.ReadFull(nc, buf)
	require.NoError(t, err)
	require.Equal(t, "HTTP/1.1 101", string(buf))
	testutil.Eventually(t, testTimeout, func() error {
		if n := h.Clients(); n != 2 {
			return fmt.Errorf("%d clients, want 2", n)
		}
		return nil
	})

	testutil.Eventually(t, testTimeout, func() error {
		if n := counterValue(t, h, "broadcast_clients_disconnected_total", "reason", "ping_timeout"); n != 1 {
			return fmt.Errorf("ping_timeout disconnects: %v", n)
		}
		if n := h.Clients(); n != 1 {
			return fmt.Errorf("%d clients, want 1", n)
		}
		return nil
	})
	// The live client keeps answering and is never dropped.
	seen := pings.Load()
	testutil.Eventually(t, testTimeout, func() error {
		if n := pings.Load(); n < seen+5 {
			return fmt.Errorf("%d pings so far", n)
		}
		return nil
	})
	assert.Equal(t, 1, h.Clients())
	assert.Equal(t, float64(1), counterValue(t, h, "broadcast_clients_disconnected_total", "reason", "ping_timeout"))
}

// TestPingsSpreadOverInterval checks that keepalive pings are spread over
// PingInterval (each client in its own slot of the maintenance ticks)
// rather than sent to every client at once, and that each client is still
// pinged about once per interval.
func TestPingsSpreadOverInterval(t *testing.T) {
	const interval = time.Second
	// WriteTimeout 400 ms makes the maintenance tick 100 ms: 10 slots.
	_, srv := startHub(t, HubOptions{PingInterval: interval, WriteTimeout: 400 * time.Millisecond, PingTimeout: 5 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()

	const n = 20
	var mu sync.Mutex
	first := make([]time.Time, n)
	counts := make([]int, n)
	start := time.Now()
	for i := range n {
		c, _, err := websocket.Dial(ctx, wsURL(srv), &websocket.DialOptions{
			OnPingReceived: func(context.Context, []byte) bool {
				mu.Lock()
				defer mu.Unlock()
				if counts[i] == 0 {
					first[i] = time.Now()
				}
				counts[i]++
				return true
			},
		})
		require.NoError(t, err)
		defer c.CloseNow()
		go func() { // reads (and so answers pings) until the end
			for {
				if _, _, err := c.Read(ctx); err != nil {
					return
				}
			}
		}()
	}
	// Every client is pinged within one interval (plus a tick) of connecting.
	testutil.Eventually(t, testTimeout, func() error {
		mu.Lock()
		defer mu.Unlock()
		for i, k := range counts {
			if k == 0 {
				return fmt.Errorf("client %d not pinged yet", i)
			}
		}
		return nil
	})
	mu.Lock()
	earliest, latest := first[0], first[0]
	for _, f := range first {
		earliest = minTime(earliest, f)
		latest = maxTime(latest, f)
	}
	mu.Unlock()
	// 20 clients in 10 slots of 100 ms: first pings over about 900 ms, not
	// at one instant.
	assert.Greater(t, latest.Sub(earliest), interval/2, "first pings from %v to %v after start", earliest.Sub(start), latest.Sub(start))

	// About one ping per client per interval, not one per 100 ms tick: two
	// more pings for every client take about one interval.
	mu.Lock()
	before := append([]int(nil), counts...)
	mu.Unlock()
	since := time.Now()
	testutil.Eventually(t, testTimeout, func() error {
		mu.Lock()
		defer mu.Unlock()
		for i := range counts {
			if counts[i]-before[i] < 2 {
				return fmt.Errorf("client %d: %d more pings", i, counts[i]-before[i])
			}
		}
		return nil
	})
	// Two consecutive pings of a client are one interval (10 ticks) apart;
	// pinging on every tick would take about 200 ms.
	assert.Greater(t, time.Since(since), interval*3/4, "two pings per client came too fast")
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
