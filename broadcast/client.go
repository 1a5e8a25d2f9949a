package broadcast

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// Reasons a client is disconnected, the values of the reason label of
// broadcast_clients_disconnected_total.
const (
	reasonClientClosed = "client_closed"  // the client closed or the connection dropped
	reasonReadLimit    = "read_limit"     // a client message exceeded ReadLimit (1009)
	reasonProtocol     = "protocol_error" // binary or malformed client message (1003, 1007)
	reasonSlow         = "slow_client"    // event queue overflow (1008)
	reasonWriteError   = "write_error"    // a write failed
	reasonWriteTimeout = "write_timeout"  // a write took longer than WriteTimeout
	reasonPingTimeout  = "ping_timeout"   // no pong within PingTimeout
	reasonShutdown     = "shutdown"       // Hub.Shutdown (1001)
)

// client is one connection. A goroutine of its own reads; writes are done
// by the hub's writers (see writer.go), so an idle client costs one
// goroutine.
type client struct {
	hub  *Hub
	conn *websocket.Conn
	out  *frameConn // conn's connection, for the hub's prepared frames
	// deflate: the client negotiated permessage-deflate; it gets the
	// messages' compressed frames (message.frameFor).
	deflate bool

	mu      sync.Mutex
	subs    uint64 // topic bit set
	custom  bool   // subs was chosen by the client (not the default "all")
	queue   []*message
	head    int        // queue[head:] is pending
	events  int        // pending non-snapshot messages
	slots   []*message // newest pending message per snapshot topic
	writing bool       // queued for the writers or being written
	closing bool

	snapPending atomic.Bool // the connect snapshots wait for SnapshotDelay (Hub.flushSnapshot)
	snapTimer   *time.Timer // under Hub.mu; set when snapPending starts true

	writeStart atomic.Int64 // UnixNano when the current write began, 0 if none
	idx        int          // position in Hub.clients, under Hub.mu
	pingSlot   int          // maintain tick (mod Hub.pingSlots) that pings it; set before it is served
}

// enqueue queues m if the client is subscribed to bit (0: always) and makes
// sure a writer will send it. It never blocks on the network.
func (c *client) enqueue(m *message, bit uint64) {
	if c.push(m, bit) {
		c.hub.schedule(c)
	}
}

// push queues m if the client is subscribed to bit (0: always). It reports
// whether the client must be handed to the writers (it was idle).
func (c *client) push(m *message, bit uint64) bool {
	h := c.hub
	c.mu.Lock()
	if c.closing || (bit != 0 && c.subs&bit == 0) {
		c.mu.Unlock()
		return false
	}
	if m.snapshot {
		if c.slots == nil {
			c.slots = make([]*message, len(h.topics))
		}
		if c.slots[m.topic] != nil {
			// A stale snapshot is still waiting: replace it in place.
			c.slots[m.topic] = m
			c.mu.Unlock()
			h.metrics.skipped[m.topic].Add(1)
			return false
		}
		c.slots[m.topic] = m
	} else {
		if c.events >= h.opts.EventQueueSize {
			c.mu.Unlock()
			c.kick(websocket.StatusPolicyViolation, "event queue overflow: client too slow", reasonSlow)
			return false
		}
		c.events++
	}
	c.queue = append(c.queue, m)
	idle := !c.writing
	c.writing = true
	c.mu.Unlock()
	return idle
}

// nextLocked pops the next message to write, or returns nil when the queue
// is empty. c.mu must be held.
func (c *client) nextLocked() *message {
	if c.head == len(c.queue) {
		if cap(c.queue) > 32 {
			c.queue = nil // release what a burst grew
		} else {
			c.queue = c.queue[:0]
		}
		c.head = 0
		return nil
	}
	m := c.queue[c.head]
	c.queue[c.head] = nil
	c.head++
	if c.head > 32 && c.head*2 > len(c.queue) {
		n := copy(c.queue, c.queue[c.head:])
		clear(c.queue[n:])
		c.queue = c.queue[:n]
		c.head = 0
	}
	if m.snapshot {
		t := m.topic
		m = c.slots[t]
		c.slots[t] = nil
	} else {
		c.events--
	}
	return m
}

// Coalescing: where raw sends exist, writeOne sends the messages waiting
// for a client together, in one send(2), up to these bounds. A poll of
// service-metrics publishes a few messages in quick succession; a client
// that a fan-out reaches late finds several waiting, and one send is a
// third of the system calls (and of the reader's wake-ups).
const (
	batchMessages = 16
	batchBytes    = 64 << 10
)

// writeOne writes the client's next pending messages: one, or on the raw
// path as many as are waiting within the batch bounds. It reports whether
// more are pending; if not, the client is no longer scheduled.
func (c *client) writeOne(now int64, w *writer) (more bool) {
	batch := w.batch[:0]
	size := 0
	coalesce := c.out.rawSends()
	c.mu.Lock()
	for !c.closing && len(batch) < batchMessages && size < batchBytes {
		m := c.nextLocked()
		if m == nil {
			break
		}
		batch = append(batch, m)
		size += len(m.frameFor(c))
		if !coalesce {
			break
		}
	}
	if len(batch) == 0 {
		c.writing = false
		c.mu.Unlock()
		return false
	}
	c.mu.Unlock()
	w.batch = batch

	frame := batch[0].frameFor(c)
	if len(batch) > 1 {
		w.buf = w.buf[:0]
		for _, m := range batch {
			w.buf = append(w.buf, m.frameFor(c)...)
		}
		frame = w.buf
	}
	// No per-write context: Hub.maintain drops a client whose write has
	// been in progress longer than WriteTimeout (closing the connection
	// ends the write).
	c.writeStart.Store(now)
	rest, err := c.out.tryWriteFrame(frame)
	if err == nil && len(rest) > 0 {
		// The socket buffer is full: a goroutine of the hub waits for
		// room and finishes the frames, so that this writer goes on to
		// the other clients at once. The client stays scheduled
		// (c.writing) until then.
		if len(batch) > 1 {
			rest = append([]byte(nil), rest...) // w.buf is the writer's
		}
		c.hub.wg.Add(1)
		go c.finishWrite(append([]*message(nil), batch...), rest)
		clear(batch)
		return false
	}
	c.writeStart.Store(0)
	ok := c.wrote(err)
	for _, m := range batch {
		if ok && m.topic >= 0 {
			w.delivered(m.topic)
		}
	}
	clear(batch)
	if !ok {
		return false
	}
	return c.doneWriting()
}

// finishWrite writes the rest of the frames of ms that writeOne could not,
// off the writers' path, and hands the client back to the writers if more
// is pending.
func (c *client) finishWrite(ms []*message, rest []byte) {
	h := c.hub
	defer h.wg.Done()
	err := c.out.finishFrame(rest)
	c.writeStart.Store(0)
	if !c.wrote(err) {
		return
	}
	for _, m := range ms {
		if m.topic >= 0 {
			h.metrics.delivered[m.topic].Add(1)
		}
	}
	if c.doneWriting() {
		h.schedule(c)
	}
}

// wrote handles the outcome of a write: a failed write drops the client
// (and unschedules it). It reports whether the write succeeded.
func (c *client) wrote(err error) bool {
	if err == nil {
		return true
	}
	why := reasonWriteError
	if errors.Is(err, net.ErrClosed) {
		// The connection was closed or a close frame went out, by the
		// peer's close handshake or by the hub: not a failed write.
		why = reasonClientClosed
	}
	c.kick(0, "", why)
	c.mu.Lock()
	c.writing = false
	c.mu.Unlock()
	return false
}

// doneWriting reports whether more messages are pending after a write; if
// not, the client is no longer scheduled.
func (c *client) doneWriting() (more bool) {
	c.mu.Lock()
	more = !c.closing && c.head < len(c.queue)
	if !more {
		c.nextLocked() // releases the drained queue
		c.writing = false
	}
	c.mu.Unlock()
	return more
}

// kick disconnects the client: with a close handshake (code, reason), or at
// once when code is 0. Only the first call counts; it returns at once, the
// closing is done by a goroutine of the hub.
func (c *client) kick(code websocket.StatusCode, reason, why string) {
	if !c.markClosing(why) {
		return
	}
	h := c.hub
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		if code == 0 {
			_ = c.conn.CloseNow()
			return
		}
		if err := c.conn.Close(code, reason); err != nil {
			h.log.Debug("broadcast: close client", "code", code, "err", err)
		}
	}()
}

// markClosing flags the client as going away and counts why, once. It
// reports whether this call did it.
func (c *client) markClosing(why string) bool {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return false
	}
	c.closing = true
	c.queue, c.head, c.events, c.slots = nil, 0, 0, nil
	c.mu.Unlock()
	c.hub.metrics.disconnected(why)
	return true
}

// closeFromReader closes the connection for a protocol error, from the
// handler goroutine, which is free to read the close handshake.
func (c *client) closeFromReader(code websocket.StatusCode, reason string) {
	if c.markClosing(reasonProtocol) {
		_ = c.conn.Close(code, reason)
	}
}

// clientRequest is a message from a client.
type clientRequest struct {
	Type   string   `json:"type"`
	Topics []string `json:"topics"`
}

// readLoop reads client messages until the connection ends.
func (c *client) readLoop() {
	h := c.hub
	for {
		typ, data, err := c.conn.Read(context.Background())
		if err != nil {
			why := reasonClientClosed
			if errors.Is(err, websocket.ErrMessageTooBig) {
				why = reasonReadLimit
			}
			c.markClosing(why)
			return
		}
		if typ != websocket.MessageText {
			c.closeFromReader(websocket.StatusUnsupportedData, "binary messages are not supported")
			return
		}
		var req clientRequest
		if err := json.Unmarshal(data, &req); err != nil || req.Type == "" {
			c.closeFromReader(websocket.StatusInvalidFramePayloadData, `malformed message: want a JSON object with a string "type"`)
			return
		}
		switch {
		case (req.Type == "subscribe" || req.Type == "unsubscribe") && req.Topics != nil:
			c.changeSubscription(req)
		case req.Type == "resync":
			// The client lost track (a gap in a sequence of updates):
			// the ack, then the latest message of every snapshot topic
			// it follows, again.
			c.enqueue(h.direct(replyMsg{Type: "ack", RequestType: req.Type, Timestamp: now()}), 0)
			if !c.snapPending.Load() {
				h.mu.Lock()
				h.sendLatestLocked(c, c.subs)
				h.mu.Unlock()
			}
		default:
			// Any other message, including a subscribe without "topics"
			// (the original service's {"type":"subscribe","channel":...}),
			// is acknowledged and changes nothing.
			c.enqueue(h.direct(replyMsg{Type: "ack", RequestType: req.Type, Timestamp: now()}), 0)
		}
		h.flushSnapshot(c)
	}
}

// changeSubscription applies a subscribe or unsubscribe request. The first
// subscribe replaces the default (all topics) with the topics listed; later
// ones add to them. Unknown topics make the whole request fail with an
// "error" reply, changing nothing.
func (c *client) changeSubscription(req clientRequest) {
	h := c.hub
	if len(req.Topics) == 0 {
		c.enqueue(h.direct(replyMsg{Type: "error", RequestType: req.Type, Error: `"topics" must list at least one topic`, Timestamp: now()}), 0)
		return
	}
	var mask uint64
	for _, name := range req.Topics {
		i, ok := h.byName[name]
		if !ok {
			c.enqueue(h.direct(replyMsg{Type: "error", RequestType: req.Type, Error: "unknown topic " + quote(name), Timestamp: now()}), 0)
			return
		}
		mask |= 1 << uint(i)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	c.mu.Lock()
	old := c.subs
	switch {
	case req.Type == "unsubscribe":
		c.subs &^= mask
	case c.custom:
		c.subs |= mask
	default:
		c.subs = mask
	}
	c.custom = true
	added := c.subs &^ old
	c.mu.Unlock()
	c.enqueue(h.direct(replyMsg{Type: "ack", RequestType: req.Type, Timestamp: now()}), 0)
	if !c.snapPending.Load() { // else flushSnapshot sends every subscribed topic
		h.sendLatestLocked(c, added)
	}
}

// ping checks that the peer still answers; a dead peer is dropped.
func (c *client) ping() {
	h := c.hub
	defer h.wg.Done()
	c.mu.Lock()
	closing := c.closing
	c.mu.Unlock()
	if closing {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.opts.PingTimeout)
	defer cancel()
	if err := c.conn.Ping(ctx); err != nil && !errors.Is(err, net.ErrClosed) {
		h.log.Debug("broadcast: client did not answer ping", "err", err)
		c.kick(0, "", reasonPingTimeout)
	}
}

func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	b, _ := json.Marshal(s)
	return string(b)
}
