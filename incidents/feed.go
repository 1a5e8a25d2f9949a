package incidents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
)

// NotifyChannel is the PostgreSQL channel the triggers NOTIFY on.
const NotifyChannel = "promflow_incidents"

// listenerAppName is the application_name of subscriber connections, to
// tell them apart in pg_stat_activity.
const listenerAppName = "promflow-incidents-listener"

// EventKind says what happened to an incident.
type EventKind string

// Event kinds. Resync is not a row change: it is delivered after the
// subscriber reconnected, because changes made while it was disconnected
// were not seen (notifications are not stored); refresh whatever you
// derived from earlier events. It comes once the feed LISTENs again, so a
// read started after receiving it sees every change the feed missed, and
// every later change arrives as an event.
const (
	EventOpened       EventKind = "opened"
	EventAcknowledged EventKind = "acknowledged"
	EventResolved     EventKind = "resolved"
	EventReopened     EventKind = "reopened"
	EventClosed       EventKind = "closed"
	EventUpdated      EventKind = "updated"
	EventDeleted      EventKind = "deleted"
	EventTruncated    EventKind = "truncated"
	EventResync       EventKind = "resync"
)

// Event is one change of the incidents table, whoever made it. It encodes
// to JSON as {"kind":"acknowledged","id":"...","status":"acknowledged",
// "prev_status":"open","source":"api","incident":{...}}.
type Event struct {
	Kind EventKind `json:"kind"`
	ID   string    `json:"id,omitempty"`
	// Status and PrevStatus are the incident's status after and before the
	// change, as seen by the trigger.
	Status     Status `json:"status,omitempty"`
	PrevStatus Status `json:"prev_status,omitempty"`
	Source     string `json:"source,omitempty"`
	// Incident is the row as read when the event was delivered (it may have
	// changed again since the event); nil for deletions, when the row is
	// gone, or with SubscribeOptions.NoFetch.
	Incident *Incident `json:"incident,omitempty"`
}

// ErrSubscriptionClosed is returned by [Subscription.Next] after Close.
var ErrSubscriptionClosed = errors.New("incidents: subscription closed")

// SubscribeOptions configures [Store.Subscribe]. The zero value works.
type SubscribeOptions struct {
	// Buffer is the capacity of the event channel; default 64. When it is
	// full the subscriber stops reading notifications, which PostgreSQL
	// queues meanwhile: nothing is dropped.
	Buffer int
	// MinBackoff and MaxBackoff bound the wait between reconnection
	// attempts; defaults 100 ms and 5 s.
	MinBackoff, MaxBackoff time.Duration
	// NoFetch skips reading the incident row for each event.
	NoFetch bool
	// ListenConnString, if set, is the connection string (URL or
	// key=value) of the LISTEN connection; default: the pool's own
	// configuration. Set it to a direct PostgreSQL address when the pool
	// goes through a transaction-pooling proxy such as PgBouncer
	// (pool_mode = transaction), which does not deliver notifications:
	// queries then go through the proxy and LISTEN does not. Its
	// application_name defaults to "promflow-incidents-listener".
	ListenConnString string
	// PingInterval is how long the LISTEN connection may stay silent
	// before it is checked with a ping, which must answer within as long
	// again or the connection is replaced (a peer gone without closing the
	// connection is otherwise noticed by TCP keepalive only, minutes
	// later); default 30 s.
	PingInterval time.Duration
	Logger       *slog.Logger
}

// Subscription delivers the change feed. It owns one goroutine and one
// dedicated connection (not taken from the pool), which it re-establishes
// with backoff when it drops. Close it when done; Close is idempotent.
type Subscription struct {
	s      *Store
	opts   SubscribeOptions
	cfg    *pgx.ConnConfig // of the LISTEN connection
	ch     chan Event
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// Subscribe opens a dedicated connection (with the pool's configuration, or
// SubscribeOptions.ListenConnString), LISTENs on [NotifyChannel] and returns
// once listening, so every change committed after Subscribe returns is
// delivered. An unparsable ListenConnString is an error wrapping
// [ErrInvalid].
func (s *Store) Subscribe(ctx context.Context, opts SubscribeOptions) (*Subscription, error) {
	if opts.Buffer <= 0 {
		opts.Buffer = 64
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 100 * time.Millisecond
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = 5 * time.Second
		if opts.MaxBackoff < opts.MinBackoff {
			opts.MaxBackoff = opts.MinBackoff
		}
	}
	if opts.PingInterval <= 0 {
		opts.PingInterval = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = s.log
	}
	cfg, err := listenConfig(s, opts.ListenConnString)
	if err != nil {
		return nil, err
	}
	sub := &Subscription{s: s, opts: opts, cfg: cfg, ch: make(chan Event, opts.Buffer), done: make(chan struct{})}
	conn, err := sub.listen(ctx)
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	sub.cancel = cancel
	go sub.run(runCtx, conn)
	return sub, nil
}

// listenConfig is the configuration of the LISTEN connection: the pool's,
// or connString's when set.
func listenConfig(s *Store, connString string) (*pgx.ConnConfig, error) {
	var cfg *pgx.ConnConfig
	if connString == "" {
		cfg = s.pool.Config().ConnConfig.Copy()
		cfg.RuntimeParams = maps.Clone(cfg.RuntimeParams)
	} else {
		c, err := pgx.ParseConfig(connString)
		if err != nil { // pgx's parse errors do not show the password
			return nil, fmt.Errorf("incidents: subscribe: ListenConnString: %w: %v", ErrInvalid, err)
		}
		cfg = c
	}
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	if connString == "" || cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = listenerAppName
	}
	// A cancelled wait (the idle check) only sets a deadline: no cancel
	// request reaches the server to abort the ping that follows.
	cfg.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.DeadlineContextWatcherHandler{Conn: c.Conn()}
	}
	return cfg, nil
}

func (sub *Subscription) listen(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, sub.cfg.Copy())
	if err != nil {
		return nil, fmt.Errorf("incidents: subscribe: %w", classify(err))
	}
	if _, err := conn.Exec(ctx, "LISTEN "+NotifyChannel); err != nil {
		_ = conn.Close(context.Background())
		return nil, fmt.Errorf("incidents: subscribe: %w", classify(err))
	}
	return conn, nil
}

// Events returns the channel of events; it is closed after Close.
func (sub *Subscription) Events() <-chan Event { return sub.ch }

// Next waits for the next event. It returns ctx.Err() when ctx is done and
// [ErrSubscriptionClosed] after Close.
func (sub *Subscription) Next(ctx context.Context) (Event, error) {
	select {
	case ev, ok := <-sub.ch:
		if !ok {
			return Event{}, ErrSubscriptionClosed
		}
		return ev, nil
	case <-ctx.Done():
		return Event{}, ctx.Err()
	}
}

// Close stops the subscription, closes its connection and waits for its
// goroutine. It is safe to call more than once and concurrently.
func (sub *Subscription) Close() error {
	sub.once.Do(sub.cancel)
	<-sub.done
	return nil
}

func (sub *Subscription) run(ctx context.Context, conn *pgx.Conn) {
	defer close(sub.done)
	defer close(sub.ch)
	defer func() {
		if conn != nil {
			_ = conn.Close(context.Background())
		}
	}()
	backoff := sub.opts.MinBackoff
	for {
		if conn == nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			c, err := sub.listen(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				sub.opts.Logger.Warn("incidents: change feed reconnect failed", "err", err, "retry_in", backoff)
				backoff = min(2*backoff, sub.opts.MaxBackoff)
				continue
			}
			conn, backoff = c, sub.opts.MinBackoff
			sub.opts.Logger.Info("incidents: change feed reconnected")
			if !sub.send(ctx, Event{Kind: EventResync}) {
				return
			}
		}
		n, err := sub.wait(ctx, conn)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			sub.opts.Logger.Warn("incidents: change feed connection lost", "err", err)
			_ = conn.Close(context.Background())
			conn = nil
			continue
		}
		if n == nil { // idle, and the ping answered
			continue
		}
		var p struct {
			Kind       EventKind `json:"kind"`
			ID         string    `json:"id"`
			Status     Status    `json:"status"`
			PrevStatus Status    `json:"prev_status"`
			Source     string    `json:"source"`
		}
		if err := json.Unmarshal([]byte(n.Payload), &p); err != nil || p.Kind == "" {
			sub.opts.Logger.Warn("incidents: ignoring malformed notification", "payload", truncate(n.Payload, 200))
			continue
		}
		ev := Event{Kind: p.Kind, ID: p.ID, Status: p.Status, PrevStatus: p.PrevStatus, Source: p.Source}
		if !sub.opts.NoFetch && p.ID != "" && p.Kind != EventDeleted {
			fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			in, err := sub.s.Get(fctx, p.ID)
			cancel()
			if err == nil {
				ev.Incident = &in
			} else if !errors.Is(err, ErrNotFound) && ctx.Err() == nil {
				sub.opts.Logger.Warn("incidents: change feed could not read incident", "id", p.ID, "err", err)
			}
		}
		if !sub.send(ctx, ev) {
			return
		}
	}
}

// wait waits for the next notification. After PingInterval without one it
// pings the connection and returns nil, nil if it answered.
func (sub *Subscription) wait(ctx context.Context, conn *pgx.Conn) (*pgconn.Notification, error) {
	wctx, cancel := context.WithTimeout(ctx, sub.opts.PingInterval)
	n, err := conn.WaitForNotification(wctx)
	cancel()
	if err == nil || ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) || conn.IsClosed() {
		return n, err
	}
	pctx, cancel := context.WithTimeout(ctx, sub.opts.PingInterval)
	defer cancel()
	if err := conn.Ping(pctx); err != nil {
		return nil, fmt.Errorf("idle check: %w", err)
	}
	return nil, nil
}

func (sub *Subscription) send(ctx context.Context, ev Event) bool {
	select {
	case sub.ch <- ev:
		return true
	case <-ctx.Done():
		return false
	}
}
