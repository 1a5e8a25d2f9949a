package httpedge

import (
	"container/list"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// ServerOptions configures [NewServer]. Every zero field has the default
// shown.
type ServerOptions struct {
	ReadHeaderTimeout time.Duration // default 10s
	// ReadTimeout bounds reading a whole request, body included;
	// default 30s.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing a response; default 60s. WebSocket
	// connections are not bound by it (the hub clears the deadlines it
	// takes over).
	WriteTimeout time.Duration
	IdleTimeout  time.Duration // keep-alive connections; default 60s
	// MaxHeaderBytes bounds request headers; default 64 KiB.
	MaxHeaderBytes int
	// MaxConns caps the connections the server holds that are not
	// WebSocket connections (those have their own cap). When a new one
	// would pass it, the connection idle for longest (one that has not
	// sent a request yet, or sits between requests) is closed to make
	// room, so that idle or slow clients cannot lock others out; if every
	// connection is busy the new one is closed. Default 4096; negative:
	// no cap.
	MaxConns int
	// Logger receives the server's own errors; default slog.Default().
	Logger *slog.Logger
}

// DefaultMaxConns is ServerOptions.MaxConns's default.
const DefaultMaxConns = 4096

// NewServer returns an http.Server for h with the limits of opts.
func NewServer(h http.Handler, opts ServerOptions) *http.Server {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&opts.ReadHeaderTimeout, 10*time.Second)
	def(&opts.ReadTimeout, 30*time.Second)
	def(&opts.WriteTimeout, 60*time.Second)
	def(&opts.IdleTimeout, 60*time.Second)
	if opts.MaxHeaderBytes <= 0 {
		opts.MaxHeaderBytes = 64 << 10
	}
	if opts.MaxConns == 0 {
		opts.MaxConns = DefaultMaxConns
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: opts.ReadHeaderTimeout,
		ReadTimeout:       opts.ReadTimeout,
		WriteTimeout:      opts.WriteTimeout,
		IdleTimeout:       opts.IdleTimeout,
		MaxHeaderBytes:    opts.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn),
	}
	if opts.MaxConns > 0 {
		srv.ConnState = newConnLimiter(opts.MaxConns).track
	}
	return srv
}

// connLimiter keeps the server's connections within max by closing the
// longest-idle one when a new connection would pass it.
type connLimiter struct {
	max   int
	mu    sync.Mutex
	n     int                        // tracked connections
	idle  *list.List                 // of net.Conn, longest idle first
	where map[net.Conn]*list.Element // idle connections' elements
}

func newConnLimiter(max int) *connLimiter {
	return &connLimiter{max: max, idle: list.New(), where: map[net.Conn]*list.Element{}}
}

// track is the http.Server's ConnState hook.
func (l *connLimiter) track(c net.Conn, s http.ConnState) {
	l.mu.Lock()
	var evict net.Conn
	switch s {
	case http.StateNew:
		l.n++
		if l.n > l.max {
			evict = l.evictLocked(c)
		}
		if evict != c {
			l.setIdleLocked(c, true)
		}
	case http.StateIdle:
		l.setIdleLocked(c, true)
	case http.StateActive:
		l.setIdleLocked(c, false)
	case http.StateHijacked, http.StateClosed:
		l.setIdleLocked(c, false)
		l.n--
	}
	l.mu.Unlock()
	if evict != nil {
		_ = evict.Close() // its StateClosed comes later, from the server
	}
}

// evictLocked picks the connection to close for the new connection c: the
// longest-idle one, else c itself.
func (l *connLimiter) evictLocked(c net.Conn) net.Conn {
	if e := l.idle.Front(); e != nil {
		victim := e.Value.(net.Conn)
		l.setIdleLocked(victim, false)
		return victim
	}
	return c
}

func (l *connLimiter) setIdleLocked(c net.Conn, idle bool) {
	if e, ok := l.where[c]; ok {
		l.idle.Remove(e)
		delete(l.where, c)
	}
	if idle {
		l.where[c] = l.idle.PushBack(c)
	}
}
