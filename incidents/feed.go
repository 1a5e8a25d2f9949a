package incidents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
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
// were not seen; refresh whatever you derived from earlier events.
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
	Logger  *slog.Logger
}

// Subscription delivers the change feed. It owns one goroutine and one
// dedicated connection (not taken from the pool), which it re-establishes
// with backoff when it drops. Close it when done; Close is idempotent.
type Subscription struct {
	s      *Store
	opts   SubscribeOptions
	ch     chan Event
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// Subscribe opens a dedicated connection with the pool's configuration,
// LISTENs on [NotifyChannel] and returns once listening, so every change
// committed after Subscribe returns is delivered.
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
	if opts.Logger == nil {
		opts.Logger = s.log
	}
	sub := &Subscription{s: s, opts: opts, ch: make(chan Event, opts.Buffer), done: make(chan struct{})}
	conn, err := sub.listen(ctx)
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	sub.cancel = cancel
	go sub.run(runCtx, conn)
	return sub, nil
}

func (sub *Subscription) listen(ctx context.Context) (*pgx.Conn, error) {
	cfg := sub.s.pool.Config().ConnConfig.Copy()
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["application_name"] = listenerAppName
	conn, err := pgx.ConnectConfig(ctx, cfg)
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
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			sub.opts.Logger.Warn("incidents: change feed connection lost", "err", err)
			_ = conn.Close(context.Background())
			conn = nil
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

func (sub *Subscription) send(ctx context.Context, ev Event) bool {
	select {
	case sub.ch <- ev:
		return true
	case <-ctx.Done():
		return false
	}
}
