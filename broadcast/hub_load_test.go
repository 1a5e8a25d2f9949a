package broadcast

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	promtestutil "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/internal/testutil"
)

// TestSlowClient: a client that never reads skips snapshots without growing
// a queue, is disconnected with 1008 once its event queue overflows, and
// never holds up the others.
func TestSlowClient(t *testing.T) {
	// Both write paths: raw sends hand a write that would block to a
	// goroutine of its own; the portable path relies on the stall watcher
	// taking the clients behind a blocked writer.
	forEachWritePath(t, testSlowClient)
}

func testSlowClient(t *testing.T, portable bool) {
	const queue = 8
	// One writer: the slow client must not hold it up for the others.
	h, srv := startHubPath(t, HubOptions{EventQueueSize: queue, PingInterval: -1, WriteTimeout: time.Minute, Writers: 1}, portable)
	slow := dial(t, srv) // never reads until the end
	fast := dial(t, srv)
	readMsg(t, fast) // connection

	// readUntil reads fast until a message with the given type and n.
	readUntil := func(typ string, n int) {
		t.Helper()
		for {
			m := readMsg(t, fast)
			if m["type"] == typ && m["n"] == float64(n) {
				return
			}
			if typ == "incident" {
				require.NotEqual(t, "incident", m["type"], "events must arrive in order, without gaps")
			}
		}
	}

	// Snapshots of 256 KB until the slow client's socket buffers are full
	// and it starts skipping. The fast client gets each one.
	pad := strings.Repeat("x", 256<<10)
	skipped := func() float64 {
		return counterValue(t, h, "broadcast_snapshots_skipped_total", "topic", TopicInstantMetrics)
	}
	for i := 0; skipped() < 3; i++ {
		require.Less(t, i, 2000, "the slow client never skipped a snapshot")
		require.NoError(t, h.Publish(TopicInstantMetrics, map[string]any{"type": "instant_metrics", "n": i, "pad": pad}))
		readUntil("instant_metrics", i)
		// At most one pending message per snapshot topic, plus the
		// connection message: the queue never grows.
		require.LessOrEqual(t, maxPending(h), len(h.topics), "a slow client's snapshot queue grew")
	}
	assert.Equal(t, 2, h.Clients(), "skipping snapshots must not disconnect anyone")
	assert.Zero(t, counterValue(t, h, "broadcast_clients_disconnected_total", "reason", "slow_client"))

	// Events: after `queue` undelivered ones the slow client is dropped; the
	// fast one receives every event, in order, as it is published.
	for i := 0; i < queue+5; i++ {
		require.NoError(t, h.Publish(TopicIncident, map[string]any{"type": "incident", "n": i}))
		readUntil("incident", i)
	}
	testutil.Eventually(t, testTimeout, func() error {
		if n := counterValue(t, h, "broadcast_clients_disconnected_total", "reason", "slow_client"); n != 1 {
			return fmt.Errorf("slow_client disconnects: %v", n)
		}
		return nil
	})
	// Once it reads, it finds the close frame with 1008 and a reason.
	code, reason := readClose(t, slow)
	assert.Equal(t, websocket.StatusPolicyViolation, code)
	assert.Contains(t, reason, "too slow")
	testutil.Eventually(t, testTimeout, func() error {
		if n := h.Clients(); n != 1 {
			return fmt.Errorf("%d clients, want 1", n)
		}
		return nil
	})
	// The fast client is still served.
	require.NoError(t, h.Publish(TopicIncident, map[string]any{"type": "incident", "n": 100}))
	readUntil("incident", 100)
}

// maxPending returns the most messages waiting in any one client's queue.
func maxPending(h *Hub) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, c := range h.clients {
		c.mu.Lock()
		n = max(n, len(c.queue)-c.head)
		c.mu.Unlock()
	}
	return n
}

// TestManyClientsConnectAndLeave: 1,000 clients connect, read a run of
// events and leave while events are published; each one sees them in order
// without gaps. The last ones are still connected at Shutdown and get 1001.
//
// Both write paths; the portable one with fewer clients, enough for the
// churn of connects and leaves while events go out, without doubling the
// test's time.
func TestManyClientsConnectAndLeave(t *testing.T) {
	forEachWritePath(t, testManyClientsConnectAndLeave)
}

func testManyClientsConnectAndLeave(t *testing.T, portable bool) {
	n, concurrent, perClient := 1000, 100, 20
	switch {
	case testing.Short():
		n = 200
	case portable:
		n = 300
	}
	// Overflow is TestSlowClient's subject; here a queue deep enough for a
	// loaded machine under -race (seconds of events) keeps every client
	// connected, so that a gap or reordering is the only way to fail.
	h, srv := startHubPath(t, HubOptions{MaxClients: -1, EventQueueSize: 1 << 14}, portable)

	pubCtx, stopPub := context.WithCancel(context.Background())
	var pubWG sync.WaitGroup
	var published atomic.Int64
	pubWG.Add(1)
	go func() {
		defer pubWG.Done()
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for seq := 0; ; seq++ {
			select {
			case <-pubCtx.Done():
				return
			case <-tick.C:
			}
			if err := h.PublishRaw(TopicIncident, fmt.Appendf(nil, `{"type":"incident","seq":%d}`, seq)); err != nil {
				return
			}
			published.Add(1)
		}
	}()
	defer func() { stopPub(); pubWG.Wait() }()

	// readEvents reads perClient consecutive events from c.
	readEvents := func(c *websocket.Conn) error {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		last := -1
		for got := 0; got < perClient; {
			_, b, err := c.Read(ctx)
			if err != nil {
				return err
			}
			var m struct {
				Type string `json:"type"`
				Seq  int    `json:"seq"`
			}
			if err := json.Unmarshal(b, &m); err != nil {
				return err
			}
			if m.Type != "incident" {
				continue
			}
			if last >= 0 && m.Seq != last+1 {
				return fmt.Errorf("event %d after %d", m.Seq, last)
			}
			last = m.Seq
			got++
		}
		return nil
	}

	keep := 50 // clients left connected for Shutdown
	var kept []*websocket.Conn
	var keptMu sync.Mutex
	sem := make(chan struct{}, concurrent)
	errs := make(chan error, n)
	for i := range n {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			errs <- func() error {
				ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
				defer cancel()
				c, _, err := websocket.Dial(ctx, wsURL(srv), nil)
				if err != nil {
					return fmt.Errorf("client %d: dial: %w", i, err)
				}
				if err := readEvents(c); err != nil {
					_ = c.CloseNow()
					return fmt.Errorf("client %d: %w", i, err)
				}
				if i >= n-keep {
					keptMu.Lock()
					kept = append(kept, c)
					keptMu.Unlock()
					return nil
				}
				return c.Close(websocket.StatusNormalClosure, "done")
			}()
		}()
	}
	for range n {
		require.NoError(t, <-errs)
	}
	stopPub()
	pubWG.Wait()
	require.Len(t, kept, keep)
	assert.Zero(t, counterValue(t, h, "broadcast_clients_disconnected_total", "reason", "slow_client"))
	// The hub's client list survived the churn: once the leavers are gone,
	// it holds the kept clients, each at the index it records.
	testutil.Eventually(t, testTimeout, func() error {
		if n := h.Clients(); n != keep {
			return fmt.Errorf("%d clients, want %d", n, keep)
		}
		return nil
	})
	h.mu.Lock()
	for i, c := range h.clients {
		assert.Equal(t, i, c.idx, "client at %d records index %d", i, c.idx)
	}
	h.mu.Unlock()

	// The kept clients drain what is left and then see 1001 on Shutdown.
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	for _, c := range kept {
		go func() {
			for {
				_, _, err := c.Read(ctx)
				if err != nil {
					if websocket.CloseStatus(err) != websocket.StatusGoingAway {
						errs <- fmt.Errorf("want 1001, got %w", err)
						return
					}
					errs <- nil
					return
				}
			}
		}()
	}
	require.NoError(t, h.Shutdown(ctx))
	for range keep {
		require.NoError(t, <-errs)
	}
	assert.Equal(t, 0, h.Clients())
	t.Logf("%d events published", published.Load())
}

// TestWriteTimeout: a client that stops reading is dropped once a write has
// been blocked for longer than WriteTimeout, even on a snapshot topic.
func TestWriteTimeout(t *testing.T) {
	forEachWritePath(t, testWriteTimeout)
}

func testWriteTimeout(t *testing.T, portable bool) {
	h, srv := startHubPath(t, HubOptions{WriteTimeout: 300 * time.Millisecond, PingInterval: -1}, portable)
	dial(t, srv) // never reads
	pad := strings.Repeat("x", 256<<10)
	testutil.Eventually(t, testTimeout, func() error {
		// Keep the socket full until the timeout fires.
		require.NoError(t, h.Publish(TopicInstantMetrics, map[string]any{"type": "instant_metrics", "pad": pad}))
		if n := counterValue(t, h, "broadcast_clients_disconnected_total", "reason", "write_timeout"); n != 1 {
			return fmt.Errorf("write_timeout disconnects: %v", n)
		}
		return nil
	})
	testutil.Eventually(t, testTimeout, func() error {
		if n := h.Clients(); n != 0 {
			return fmt.Errorf("%d clients", n)
		}
		return nil
	})
}

func TestMetrics(t *testing.T) {
	h, srv := startHub(t, HubOptions{})
	a, b := dial(t, srv), dial(t, srv)
	readMsg(t, a)
	readMsg(t, b)
	require.NoError(t, h.PublishRaw(TopicIncident, []byte(`{"type":"incident","n":1}`)))
	require.NoError(t, h.PublishRaw(TopicIncident, []byte(`{"type":"incident","n":2}`)))
	require.NoError(t, h.PublishRaw(TopicInstantMetrics, []byte(`{"type":"instant_metrics"}`)))
	for _, c := range []*websocket.Conn{a, b} {
		for range 3 {
			readMsg(t, c)
		}
	}
	assert.Equal(t, float64(2), counterValue(t, h, "broadcast_clients_connected"))
	assert.Equal(t, float64(2), counterValue(t, h, "broadcast_messages_published_total", "topic", TopicIncident))
	assert.Equal(t, float64(1), counterValue(t, h, "broadcast_messages_published_total", "topic", TopicInstantMetrics))
	testutil.Eventually(t, testTimeout, func() error {
		if n := counterValue(t, h, "broadcast_messages_delivered_total", "topic", TopicIncident); n != 4 {
			return fmt.Errorf("delivered incidents: %v", n)
		}
		return nil
	})
	// Every disconnect and refusal reason is exported from the start.
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(h))
	n, err := promtestutil.GatherAndCount(reg, "broadcast_clients_disconnected_total")
	require.NoError(t, err)
	assert.Equal(t, 8, n)
	n, err = promtestutil.GatherAndCount(reg, "broadcast_connections_refused_total")
	require.NoError(t, err)
	assert.Equal(t, 4, n)

	require.NoError(t, a.Close(websocket.StatusNormalClosure, ""))
	testutil.Eventually(t, testTimeout, func() error {
		if n := counterValue(t, h, "broadcast_clients_disconnected_total", "reason", "client_closed"); n != 1 {
			return fmt.Errorf("client_closed: %v", n)
		}
		if n := counterValue(t, h, "broadcast_clients_connected"); n != 1 {
			return fmt.Errorf("connected: %v", n)
		}
		return nil
	})
}

// TestStallWatch checks the stall watcher's decisions with an injected
// clock: a writer that still holds clients it has not begun is watched
// even while no client waits in the queue (the hole TestSlowClient hit),
// and once blocked for stallAfter it loses those clients to a new writer.
func TestStallWatch(t *testing.T) {
	h := newHub(t, HubOptions{Writers: 1, PingInterval: -1})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		assert.NoError(t, h.Shutdown(ctx))
	})
	// Closing clients: a writer that takes one finds nothing to write.
	writing, behind := &client{hub: h, closing: true, writing: true}, &client{hub: h, closing: true, writing: true}
	w := &writer{chunk: []*client{writing, behind}}
	w.next.Store(1) // writing is being written, behind not begun
	start := time.Now()
	w.since.Store(start.UnixNano())
	h.pool.mu.Lock()
	h.pool.writers = []*writer{w}
	h.pool.mu.Unlock()

	require.True(t, h.replaceStalledWriters(start.Add(stallAfter/2)),
		"a busy writer holding an unbegun client must stay watched")
	require.Equal(t, int64(1), w.next.Load(), "a writer not stalled yet keeps its clients")

	require.True(t, h.replaceStalledWriters(start.Add(stallAfter+time.Millisecond)))
	require.Equal(t, int64(2), w.next.Load(), "the stalled writer's unbegun client was not taken")
	testutil.Eventually(t, testTimeout, func() error {
		behind.mu.Lock()
		defer behind.mu.Unlock()
		if behind.writing {
			return errors.New("no new writer took the client behind the stalled one")
		}
		return nil
	})

	// Nothing left to hand over, the stalled writer itself is not watched.
	w.next.Store(2)
	h.pool.mu.Lock()
	h.pool.writers = nil
	h.pool.mu.Unlock()
	require.False(t, h.replaceStalledWriters(start.Add(time.Hour)))
}
