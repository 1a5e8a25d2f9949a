package broadcast

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// TopicKind says how a topic's messages are delivered to a client that is
// slower than the publisher.
type TopicKind uint8

const (
	// SnapshotTopic is a topic where only the newest message matters (e.g.
	// the latest query results). A client that has not yet received the
	// previous message gets the new one in its place: its queue never grows
	// beyond one message per snapshot topic. New clients receive the latest
	// message on connect.
	SnapshotTopic TopicKind = iota + 1
	// EventTopic is a topic whose messages all matter, in order (e.g.
	// incident changes). Each client has a bounded queue; a client that
	// falls behind by more than [HubOptions.EventQueueSize] messages is
	// disconnected with close code 1008 rather than silently losing one.
	EventTopic
)

// String returns "snapshot" or "event".
func (k TopicKind) String() string {
	switch k {
	case SnapshotTopic:
		return "snapshot"
	case EventTopic:
		return "event"
	default:
		return fmt.Sprintf("TopicKind(%d)", uint8(k))
	}
}

// Topic declares a topic of a [Hub].
type Topic struct {
	Name string
	Kind TopicKind
}

// DefaultTopic is the one topic of a Hub whose [HubOptions.Topics] is nil:
// an event topic, every message delivered in order.
const DefaultTopic = "default"

// DefaultTopics returns the topics a Hub has when [HubOptions.Topics] is nil:
// the single event topic [DefaultTopic].
func DefaultTopics() []Topic {
	return []Topic{{Name: DefaultTopic, Kind: EventTopic}}
}

// maxTopics bounds the number of topics: subscriptions are a bit set.
const maxTopics = 64

// Defaults used when the corresponding HubOptions field is zero.
const (
	DefaultConnectMessage = "connected"
	DefaultWriteTimeout   = 5 * time.Second
	DefaultPingInterval   = 30 * time.Second
	DefaultPingTimeout    = 10 * time.Second
	DefaultReadLimit      = 4096
	DefaultEventQueueSize = 256
	DefaultMaxClients     = 10000
)

// HubOptions configures a [Hub]. The zero value works: default topics,
// defaults above, same-origin (or no Origin) clients only, no authorization.
type HubOptions struct {
	// Topics the hub serves. Nil means DefaultTopics(). At most 64.
	Topics []Topic
	// ConnectMessage is the "message" of the first message every client
	// receives. Default DefaultConnectMessage.
	ConnectMessage string
	// EventQueueSize bounds the number of undelivered event messages
	// (including acks) per client. Default DefaultEventQueueSize.
	EventQueueSize int
	// WriteTimeout bounds each write to a client; a client that does not
	// take a message within it is disconnected. Default DefaultWriteTimeout.
	WriteTimeout time.Duration
	// PingInterval is how often every client is pinged; a client that does
	// not answer within PingTimeout is dropped. The pings are spread over
	// the interval (each client has its own slot), not sent to every
	// client at once. Default DefaultPingInterval; negative disables
	// keepalive pings.
	PingInterval time.Duration
	// PingTimeout is how long to wait for a pong. Default DefaultPingTimeout.
	PingTimeout time.Duration
	// ReadLimit is the largest client message in bytes; a bigger one closes
	// the client with 1009. Default DefaultReadLimit.
	ReadLimit int64
	// MaxClients caps connected clients; beyond it the upgrade is refused
	// with 503. Default DefaultMaxClients; negative means no cap.
	MaxClients int
	// AllowedOrigins lists extra origins allowed to connect, as host
	// patterns matched with path.Match against the Origin's host (e.g.
	// "dashboard.example.com", "*.example.com"). Clients that send no Origin
	// and same-origin clients are always allowed. Entries are trimmed and
	// may be written as origins ("https://dashboard.example.com"; only the
	// host and a non-default port count); malformed ones are logged and
	// ignored.
	AllowedOrigins []string
	// CheckOrigin, if set, replaces the origin check (AllowedOrigins and
	// same-origin): it reports whether r's origin may connect; a refused
	// one gets 403.
	CheckOrigin func(r *http.Request) bool
	// Authorize, if set, is called before the upgrade. A non-nil error
	// refuses the connection: with the error's status if it is an
	// *HTTPError, else 403.
	Authorize func(r *http.Request) error
	// SnapshotDelay holds back the latest snapshots a new client gets
	// after the connection message: they follow the client's first
	// message (its reply first), or come SnapshotDelay after connecting
	// if it sends none. Zero sends them at once. Clients written for a
	// server that sends nothing but the connection message on connect
	// (and close after reading it) then see nothing else.
	SnapshotDelay time.Duration
	// Logger receives connection-level logs. Default slog.Default().
	Logger *slog.Logger
	// Writers is how many goroutines write to clients while messages are
	// pending (none exist when idle); a slow client never holds up the
	// others, whatever the number. Default 8 × GOMAXPROCS (docs/design.md
	// says why).
	Writers int
	// Compression negotiates permessage-deflate (RFC 7692) with clients
	// that offer it, without context takeover: each message of 256 bytes
	// or more is compressed once, and the same compressed frame goes to
	// every client that negotiated the extension; the others get the
	// plain frame. Off by default: it costs CPU once per message and
	// saves bandwidth per client (docs/design.md, "Compression").
	Compression bool
}

// Errors returned by the hub.
var (
	// ErrClosed is returned by Publish after Shutdown.
	ErrClosed = errors.New("broadcast: hub is shut down")
	// ErrUnknownTopic is returned when publishing to a topic the hub does
	// not declare.
	ErrUnknownTopic = errors.New("broadcast: unknown topic")
	// ErrInvalidMessage is returned by PublishRaw for bytes that are not
	// valid JSON.
	ErrInvalidMessage = errors.New("broadcast: message is not valid JSON")
)

// HTTPError is an error with an HTTP status, which an Authorize hook can
// return to choose the refusal status (e.g. 401).
type HTTPError struct {
	Code    int
	Message string
}

// Error returns the status and the message, e.g. "401 Unauthorized: token required".
func (e *HTTPError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.Code, http.StatusText(e.Code), e.Message)
}

// message is one encoded message, shared by every client that receives it.
type message struct {
	frame    []byte // the whole WebSocket frame (textFrame), shared by every client
	topic    int    // index in Hub.topics; -1 for messages to a single client
	snapshot bool

	// The frame compressed for permessage-deflate (deflateFrame), built
	// on first use by frameFor; nil if compressing does not pay.
	deflateOnce sync.Once
	deflated    []byte
}

// Hub is an http.Handler that upgrades requests to WebSocket connections and
// fans published messages out to them. See the package documentation.
type Hub struct {
	opts    HubOptions
	log     *slog.Logger
	topics  []Topic
	byName  map[string]int
	allSubs uint64
	connMsg string
	metrics hubMetrics

	wg sync.WaitGroup // readers, writers, closers, pingers, maintain

	mu sync.Mutex // guards the fields below; never held while writing or closing
	// clients in the order they connected (a leaving client's slot takes
	// the last one); publish walks them in this order, which makes the
	// fan-out's sends cheaper (docs/design.md, "Connection order").
	clients     []*client
	reserved    int // upgrades in progress, counted against MaxClients
	latest      []*message
	closed      bool
	maintaining bool
	done        chan struct{} // closed by Shutdown
	batch       []*client     // reused by publish
	nextSlot    int           // ping slot of the next client

	period    time.Duration // of Hub.maintain
	pingSlots int           // maintain ticks per PingInterval

	pool writerPool // has its own lock

	portableWrites bool         // tests: never use raw sends
	deflates       atomic.Int64 // messages compressed (tests)
}

// ErrInvalidOptions is returned by NewHub for invalid HubOptions.Topics
// (an empty or duplicate name, an unknown kind, more than 64).
var ErrInvalidOptions = errors.New("broadcast: invalid options")

// NewHub returns a Hub. It starts no goroutine until the first client
// connects. It fails with ErrInvalidOptions on invalid Topics.
func NewHub(opts HubOptions) (*Hub, error) {
	if opts.Topics == nil {
		opts.Topics = DefaultTopics()
	}
	if opts.ConnectMessage == "" {
		opts.ConnectMessage = DefaultConnectMessage
	}
	if opts.EventQueueSize <= 0 {
		opts.EventQueueSize = DefaultEventQueueSize
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = DefaultWriteTimeout
	}
	if opts.PingInterval == 0 {
		opts.PingInterval = DefaultPingInterval
	}
	if opts.PingTimeout <= 0 {
		opts.PingTimeout = DefaultPingTimeout
	}
	if opts.ReadLimit <= 0 {
		opts.ReadLimit = DefaultReadLimit
	}
	if opts.MaxClients == 0 {
		opts.MaxClients = DefaultMaxClients
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Writers <= 0 {
		opts.Writers = 8 * runtime.GOMAXPROCS(0)
	}
	opts.AllowedOrigins = originPatterns(opts.AllowedOrigins, opts.Logger)
	if len(opts.Topics) > maxTopics {
		return nil, fmt.Errorf("%w: %d topics, at most %d", ErrInvalidOptions, len(opts.Topics), maxTopics)
	}
	h := &Hub{
		opts:    opts,
		log:     opts.Logger,
		topics:  append([]Topic(nil), opts.Topics...),
		byName:  make(map[string]int, len(opts.Topics)),
		connMsg: opts.ConnectMessage,
		latest:  make([]*message, len(opts.Topics)),
		done:    make(chan struct{}),
	}
	h.pool.kick = make(chan struct{}, 1)
	h.period = min(opts.WriteTimeout/4, time.Second)
	h.pingSlots = 1
	if opts.PingInterval > 0 {
		h.period = min(h.period, opts.PingInterval)
		h.pingSlots = max(1, int(opts.PingInterval/h.period))
	}
	for i, t := range h.topics {
		if t.Name == "" {
			return nil, fmt.Errorf("%w: topic with empty name", ErrInvalidOptions)
		}
		if t.Kind != SnapshotTopic && t.Kind != EventTopic {
			return nil, fmt.Errorf("%w: topic %q has invalid kind %v", ErrInvalidOptions, t.Name, t.Kind)
		}
		if _, dup := h.byName[t.Name]; dup {
			return nil, fmt.Errorf("%w: duplicate topic %q", ErrInvalidOptions, t.Name)
		}
		h.byName[t.Name] = i
		h.allSubs |= 1 << uint(i)
	}
	h.metrics.init(h.topics)
	return h, nil
}

// Topics returns the topics the hub serves.
func (h *Hub) Topics() []Topic { return append([]Topic(nil), h.topics...) }

// Clients returns the number of connected clients.
func (h *Hub) Clients() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients)
}

// Publish encodes v as JSON once and sends it to every client subscribed to
// topic. It never blocks on clients. v is the whole message, e.g.
// {"type":"incident",...}.
func (h *Hub) Publish(topic string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("broadcast: encode message for %q: %w", topic, err)
	}
	return h.publish(topic, b)
}

// PublishRaw sends the JSON message b to every client subscribed to topic.
// The hub copies b once, into the frame it shares among clients. It never
// blocks on clients.
func (h *Hub) PublishRaw(topic string, b []byte) error {
	if !json.Valid(b) {
		return fmt.Errorf("%w (topic %q)", ErrInvalidMessage, topic)
	}
	return h.publish(topic, b)
}

// ErrNotSnapshot is returned by RetainRaw for a topic that is not a
// snapshot topic.
var ErrNotSnapshot = errors.New("broadcast: not a snapshot topic")

// RetainRaw makes the JSON message b the latest message of the snapshot
// topic without sending it to anyone now: clients get it when they connect,
// subscribe to the topic or ask for a resync. Use it for a full state that
// connected clients follow through smaller updates on another topic.
func (h *Hub) RetainRaw(topic string, b []byte) error {
	if !json.Valid(b) {
		return fmt.Errorf("%w (topic %q)", ErrInvalidMessage, topic)
	}
	ti, ok := h.byName[topic]
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownTopic, topic)
	}
	if h.topics[ti].Kind != SnapshotTopic {
		return fmt.Errorf("%w: %q", ErrNotSnapshot, topic)
	}
	m := &message{frame: textFrame(b), topic: ti, snapshot: true}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return ErrClosed
	}
	h.latest[ti] = m
	return nil
}

func (h *Hub) publish(topic string, b []byte) error {
	ti, ok := h.byName[topic]
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownTopic, topic)
	}
	m := &message{frame: textFrame(b), topic: ti, snapshot: h.topics[ti].Kind == SnapshotTopic}
	bit := uint64(1) << uint(ti)

	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return ErrClosed
	}
	h.metrics.published[ti].Add(1)
	if m.snapshot {
		h.latest[ti] = m
	}
	batch := h.batch[:0]
	for _, c := range h.clients {
		if c.push(m, bit) {
			batch = append(batch, c)
		}
	}
	h.scheduleAll(batch)
	clear(batch)
	h.batch = batch
	return nil
}

// IsWebSocketUpgrade reports whether r asks for a WebSocket upgrade, so that
// one route can serve both a page and the hub:
//
//	if broadcast.IsWebSocketUpgrade(r) { hub.ServeHTTP(w, r); return }
func IsWebSocketUpgrade(r *http.Request) bool {
	return headerHasToken(r.Header, "Connection", "upgrade") &&
		headerHasToken(r.Header, "Upgrade", "websocket")
}

func headerHasToken(h http.Header, key, token string) bool {
	for _, v := range h.Values(key) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// ServeHTTP upgrades the request to a WebSocket connection and serves it
// until the client leaves or the hub shuts down. Requests that are not
// upgrades get 426; refused origins 403; a full hub or one shut down 503.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !IsWebSocketUpgrade(r) {
		w.Header().Set("Upgrade", "websocket")
		httpError(w, "this endpoint expects a WebSocket upgrade", http.StatusUpgradeRequired)
		return
	}
	if h.opts.Authorize != nil {
		if err := h.opts.Authorize(r); err != nil {
			code := http.StatusForbidden
			var he *HTTPError
			if errors.As(err, &he) && he.Code >= 400 && he.Code < 600 {
				code = he.Code
			}
			h.metrics.refused(refusedUnauthorized)
			httpError(w, "connection refused: "+err.Error(), code)
			return
		}
	}
	if err := h.checkOrigin(r); err != nil {
		h.metrics.refused(refusedOrigin)
		httpError(w, err.Error(), http.StatusForbidden)
		return
	}

	// Reserve a slot before the upgrade so the cap holds under a burst.
	h.mu.Lock()
	switch {
	case h.closed:
		h.mu.Unlock()
		h.metrics.refused(refusedShutdown)
		httpError(w, "server is shutting down", http.StatusServiceUnavailable)
		return
	case h.opts.MaxClients > 0 && len(h.clients)+h.reserved >= h.opts.MaxClients:
		h.mu.Unlock()
		h.metrics.refused(refusedCapacity)
		w.Header().Set("Retry-After", "5")
		httpError(w, "too many WebSocket clients", http.StatusServiceUnavailable)
		return
	}
	h.reserved++
	h.wg.Add(1) // Shutdown waits for upgrades in progress too
	h.mu.Unlock()
	defer h.wg.Done()

	hw := &hijackWriter{ResponseWriter: w}
	mode := websocket.CompressionDisabled
	if h.opts.Compression {
		// Without context takeover, so that one compressed frame per
		// message suits every client (deflate.go).
		mode = websocket.CompressionNoContextTakeover
	}
	conn, err := websocket.Accept(hw, r, &websocket.AcceptOptions{
		// The origin was checked above, with the hub's own rules.
		InsecureSkipVerify: true,
		CompressionMode:    mode,
	})
	if err == nil && hw.fc == nil { // Accept always hijacks through hw; never seen
		_ = conn.CloseNow()
		err = errors.New("websocket.Accept did not hijack through the hub's writer")
	}
	if err != nil {
		h.mu.Lock()
		h.reserved--
		h.mu.Unlock()
		h.log.Debug("broadcast: upgrade failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	conn.SetReadLimit(h.opts.ReadLimit)
	hw.fc.portable = h.portableWrites
	c := &client{hub: h, conn: conn, out: hw.fc, subs: h.allSubs, deflate: hw.deflate}

	h.mu.Lock()
	h.reserved--
	if h.closed {
		h.mu.Unlock()
		h.metrics.refused(refusedShutdown)
		_ = conn.Close(websocket.StatusGoingAway, "server is shutting down")
		return
	}
	c.idx = len(h.clients)
	h.clients = append(h.clients, c)
	c.pingSlot = h.nextSlot
	h.nextSlot = (h.nextSlot + 1) % h.pingSlots
	h.metrics.connected.Add(1)
	h.startMaintenanceLocked()
	c.enqueue(h.direct(connectionMsg{Type: "connection", Message: h.connMsg, Timestamp: now()}), 0)
	if d := h.opts.SnapshotDelay; d > 0 {
		c.snapPending.Store(true)
		c.snapTimer = time.AfterFunc(d, func() { h.flushSnapshot(c) })
	} else {
		h.sendLatestLocked(c, c.subs)
	}
	// The connection is served by a goroutine of its own, so that net/http's
	// goroutine returns and frees the request, response and their buffers:
	// an idle client then costs a small stack and the connection buffers.
	h.wg.Add(1)
	h.mu.Unlock()
	go h.serveClient(c)
}

// serveClient reads from c until it goes away, then forgets it.
func (h *Hub) serveClient(c *client) {
	defer h.wg.Done()
	c.readLoop()
	h.mu.Lock()
	last := len(h.clients) - 1
	h.clients[c.idx] = h.clients[last]
	h.clients[c.idx].idx = c.idx
	h.clients[last] = nil
	h.clients = h.clients[:last]
	h.mu.Unlock()
	h.metrics.connected.Add(-1)
	_ = c.conn.CloseNow()
}

// flushSnapshot sends c the latest snapshots it has not had yet because of
// HubOptions.SnapshotDelay: after its first message or when the delay
// ends, whichever comes first. Only the first call does anything.
func (h *Hub) flushSnapshot(c *client) {
	if !c.snapPending.CompareAndSwap(true, false) {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	c.snapTimer.Stop() // set under h.mu
	if !h.closed {
		h.sendLatestLocked(c, c.subs)
	}
}

// sendLatestLocked queues the latest message of every snapshot topic in subs.
func (h *Hub) sendLatestLocked(c *client, subs uint64) {
	for i, m := range h.latest {
		if m != nil && subs&(1<<uint(i)) != 0 {
			c.enqueue(m, 1<<uint(i))
		}
	}
}

// direct encodes a message for a single client.
func (h *Hub) direct(v any) *message {
	b, err := json.Marshal(v)
	if err != nil { // only plain structs of strings are encoded here
		panic(fmt.Sprintf("broadcast: encode %T: %v", v, err))
	}
	return &message{frame: textFrame(b), topic: -1}
}

// httpError answers a refused request with the project's JSON error shape,
// {"status":"error","error":msg}.
func httpError(w http.ResponseWriter, msg string, code int) {
	b, _ := json.Marshal(struct {
		Status string `json:"status"`
		Error  string `json:"error"`
	}{"error", msg})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

// originPatterns cleans HubOptions.AllowedOrigins: entries are trimmed and
// lower-cased, an entry written as an origin ("https://host:port") is
// reduced to its host and port (without the scheme's default port; the
// scheme itself is not checked), and empty or malformed patterns are
// dropped with a warning rather than silently never matching.
func originPatterns(list []string, log *slog.Logger) []string {
	var out []string
	for _, p := range list {
		p = strings.ToLower(strings.TrimSpace(p))
		if p == "" {
			continue
		}
		if strings.Contains(p, "://") {
			u, err := url.Parse(p)
			if err != nil || u.Host == "" {
				log.Warn("broadcast: allowed origin ignored: not a host pattern or origin", "origin", p)
				continue
			}
			// Browsers leave the scheme's default port out of Origin.
			p = u.Host
			if port := u.Port(); (u.Scheme == "https" || u.Scheme == "wss") && port == "443" ||
				(u.Scheme == "http" || u.Scheme == "ws") && port == "80" {
				p = strings.TrimSuffix(p, ":"+port)
			}
		}
		if _, err := path.Match(p, ""); err != nil {
			log.Warn("broadcast: allowed origin ignored: bad pattern", "origin", p, "err", err)
			continue
		}
		out = append(out, p)
	}
	return out
}

func (h *Hub) checkOrigin(r *http.Request) error {
	origin := r.Header.Get("Origin")
	if h.opts.CheckOrigin != nil {
		if h.opts.CheckOrigin(r) {
			return nil
		}
		return fmt.Errorf("origin %q refused", origin)
	}
	if origin == "" {
		return nil
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return fmt.Errorf("origin %q refused: not a valid origin", origin)
	}
	if strings.EqualFold(u.Host, r.Host) {
		return nil
	}
	host := strings.ToLower(u.Host)
	for _, p := range h.opts.AllowedOrigins {
		if ok, _ := path.Match(p, host); ok {
			return nil
		}
		// A pattern without a port also allows the host on any port.
		if h, _, err := net.SplitHostPort(host); err == nil {
			if ok, _ := path.Match(p, h); ok {
				return nil
			}
		}
	}
	return fmt.Errorf("origin %q refused: not same-origin and not in the allow-list", origin)
}

// startMaintenanceLocked starts, with the first client, the goroutine that
// pings clients and enforces the write timeout.
func (h *Hub) startMaintenanceLocked() {
	if h.maintaining {
		return
	}
	h.maintaining = true
	h.wg.Add(1)
	go h.maintain()
}

// maintain enforces WriteTimeout (a write in progress for longer gets its
// client dropped; checked every WriteTimeout/4, at most every second), sends
// keepalive pings (each tick to the clients of one slot, so that every
// client is pinged once per PingInterval and a hub with 10,000 clients does
// not start 10,000 pings at once), and while clients wait for a writer,
// replaces writers stalled on slow clients. Doing this from one goroutine
// spares every write a timer of its own.
func (h *Hub) maintain() {
	defer h.wg.Done()
	t := time.NewTicker(h.period)
	defer t.Stop()
	tick := 0
	var cs, pings []*client
	stall := time.NewTimer(time.Hour)
	stall.Stop()
	defer stall.Stop()
	watching := false
	for {
		select {
		case <-h.done:
			return
		case <-h.pool.kick:
			if !watching {
				watching = true
				stall.Reset(stallAfter)
			}
			continue
		case <-stall.C:
			watching = h.replaceStalledWriters(time.Now())
			if watching {
				stall.Reset(stallAfter)
			}
			continue
		case <-t.C:
		}
		tick = (tick + 1) % h.pingSlots
		stuck := time.Now().Add(-h.opts.WriteTimeout).UnixNano()
		ping := h.opts.PingInterval > 0
		cs, pings = cs[:0], pings[:0]
		h.mu.Lock()
		if h.closed {
			h.mu.Unlock()
			return
		}
		for _, c := range h.clients {
			if ws := c.writeStart.Load(); ws != 0 && ws < stuck {
				cs = append(cs, c)
			} else if ping && c.pingSlot == tick {
				pings = append(pings, c)
			}
		}
		h.wg.Add(len(pings))
		h.mu.Unlock()
		for _, c := range cs {
			c.kick(0, "", reasonWriteTimeout)
		}
		for _, c := range pings {
			go c.ping()
		}
		clear(cs)
		clear(pings)
	}
}

// Shutdown closes every client with 1001 (going away), refuses new ones and
// returns when all the hub's goroutines have exited. If ctx ends first, the
// remaining connections are closed without handshake and Shutdown returns
// ctx.Err() once the goroutines are gone. It is safe to call more than once.
func (h *Hub) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	var cs []*client
	first := !h.closed
	if first {
		h.closed = true
		close(h.done)
		for _, c := range h.clients {
			cs = append(cs, c)
		}
		// Held while kicking: each kick adds a goroutine to h.wg, and a
		// concurrent Shutdown's Wait must not see the count reach zero
		// between two of them.
		h.wg.Add(1)
	}
	h.mu.Unlock()
	for _, c := range cs {
		c.kick(websocket.StatusGoingAway, "server is shutting down", reasonShutdown)
	}
	if first {
		h.wg.Done()
	}

	waited := make(chan struct{})
	go func() {
		h.wg.Wait()
		close(waited)
	}()
	select {
	case <-waited:
		return nil
	case <-ctx.Done():
	}
	h.mu.Lock()
	cs = cs[:0]
	for _, c := range h.clients {
		cs = append(cs, c)
	}
	h.mu.Unlock()
	for _, c := range cs {
		_ = c.conn.CloseNow()
	}
	<-waited
	return ctx.Err()
}

// Close closes every connection at once, without the close handshake,
// refuses new ones and returns when the hub's goroutines have exited (which
// takes no longer than closing the sockets). Use Shutdown for a graceful
// stop. It is safe to call more than once, and after Shutdown.
func (h *Hub) Close() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = h.Shutdown(ctx)
	return nil
}

type connectionMsg struct {
	Type      string `json:"type"`
	Message   string `json:"message"`
	Timestamp string `json:"timestamp"`
}

type replyMsg struct {
	Type        string `json:"type"`
	RequestType string `json:"requestType"`
	Error       string `json:"error,omitempty"`
	Timestamp   string `json:"timestamp"`
}

// now formats the current time as JavaScript's toISOString does.
func now() string { return time.Now().UTC().Format(timeFormat) }

const timeFormat = "2006-01-02T15:04:05.000Z07:00"

var _ http.Handler = (*Hub)(nil)
