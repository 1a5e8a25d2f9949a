// Package supervise keeps a child process running: when it exits, it is
// started again with exponential backoff, until the supervisor is stopped
// or a start fails in a way retrying cannot fix.
//
// Call [Start] with a function that starts the child and returns once it is
// ready; stop with [Supervisor.Stop]. [Supervisor.Current] and
// [Supervisor.Restarts] are safe for concurrent use.
package supervise

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Child is a started process as the supervisor sees it: Done is closed
// when it has exited, Stop ends it and waits.
type Child interface {
	Done() <-chan struct{}
	Stop() error
}

// Defaults of [Options].
const (
	DefaultMinBackoff  = 250 * time.Millisecond
	DefaultMaxBackoff  = 10 * time.Second
	DefaultResetAfter  = 30 * time.Second
	DefaultMaxFailures = 10
)

// ErrGaveUp is wrapped by the error given to Options.OnGiveUp.
var ErrGaveUp = errors.New("supervise: gave up restarting")

// Options configures a [Supervisor]. The zero value works.
type Options struct {
	// Name labels the child in logs and errors.
	Name string
	// MinBackoff is the wait before the first restart, doubled after each
	// failed start up to MaxBackoff. A child that stayed up ResetAfter
	// or longer is restarted after MinBackoff again.
	MinBackoff, MaxBackoff, ResetAfter time.Duration
	// MaxFailures consecutive failed starts make the supervisor give up.
	MaxFailures int
	// Permanent reports a start error that retrying cannot fix (e.g. the
	// binary is gone): the supervisor gives up at once. Default: none is.
	Permanent func(error) bool
	// ExitInfo, if set, says what is known of a child that exited (e.g.
	// the tail of its log); it is logged with the exit.
	ExitInfo func(Child) string
	// OnGiveUp is called once, from the supervisor's goroutine, with an
	// error wrapping [ErrGaveUp] and the last start error.
	OnGiveUp func(error)
	Logger   *slog.Logger
}

// Supervisor keeps one child of type C running. It owns one goroutine,
// stopped by Stop.
type Supervisor[C Child] struct {
	opts  Options
	start func(context.Context) (C, error)

	mu       sync.Mutex
	cur      C
	up       bool
	restarts int

	cancel   context.CancelFunc
	done     chan struct{}
	stopOnce sync.Once
	stopErr  error
}

// Start starts the child with start and supervises it. An error of this
// first start is returned as it is and nothing is left running. ctx bounds
// the first start only; restarts use the supervisor's own context, which
// Stop cancels.
func Start[C Child](ctx context.Context, start func(context.Context) (C, error), opts Options) (*Supervisor[C], error) {
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = DefaultMinBackoff
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(DefaultMaxBackoff, opts.MinBackoff)
	}
	if opts.ResetAfter <= 0 {
		opts.ResetAfter = DefaultResetAfter
	}
	if opts.MaxFailures <= 0 {
		opts.MaxFailures = DefaultMaxFailures
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	c, err := start(ctx)
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	s := &Supervisor[C]{opts: opts, start: start, cur: c, up: true, cancel: cancel, done: make(chan struct{})}
	go s.run(runCtx, c)
	return s, nil
}

// Current returns the last child started and whether it is running: false
// while it is down, between an exit and a successful restart (or for good
// after the supervisor gave up or was stopped).
func (s *Supervisor[C]) Current() (C, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur, s.up
}

// Restarts returns how many times the child was started again.
func (s *Supervisor[C]) Restarts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.restarts
}

// Stop ends supervision, then stops the running child (if any) and
// returns its Stop error. It is idempotent.
func (s *Supervisor[C]) Stop() error {
	s.stopOnce.Do(func() {
		s.cancel()
		<-s.done
		if c, up := s.Current(); up {
			s.stopErr = c.Stop()
		}
		s.mu.Lock()
		s.up = false
		s.mu.Unlock()
	})
	return s.stopErr
}

func (s *Supervisor[C]) run(ctx context.Context, c C) {
	defer close(s.done)
	log := s.opts.Logger.With("component", s.opts.Name)
	delay := s.opts.MinBackoff
	for {
		upSince := time.Now()
		select {
		case <-ctx.Done():
			return
		case <-c.Done():
		}
		s.set(c, false, false)
		uptime := time.Since(upSince)
		if uptime >= s.opts.ResetAfter {
			delay = s.opts.MinBackoff
		}
		attrs := []any{"uptime", uptime.Round(time.Millisecond).String(), "restart_in", delay.String()}
		if s.opts.ExitInfo != nil {
			attrs = append(attrs, "info", s.opts.ExitInfo(c))
		}
		log.Error("child process exited: restarting it", attrs...)
		var ok bool
		if c, ok = s.restart(ctx, log, &delay); !ok {
			return
		}
		log.Info("child process restarted", "down_for", time.Since(upSince.Add(uptime)).Round(time.Millisecond).String())
	}
}

// restart starts the child again, waiting *delay before each attempt and
// doubling it after each; it reports false when ctx ended or it gave up.
func (s *Supervisor[C]) restart(ctx context.Context, log *slog.Logger, delay *time.Duration) (C, bool) {
	var zero C
	for failures := 1; ; failures++ {
		select {
		case <-ctx.Done():
			return zero, false
		case <-time.After(*delay):
		}
		*delay = min(2**delay, s.opts.MaxBackoff)
		c, err := s.start(ctx)
		if err == nil {
			s.set(c, true, true)
			return c, true
		}
		if ctx.Err() != nil {
			return zero, false
		}
		if failures >= s.opts.MaxFailures || (s.opts.Permanent != nil && s.opts.Permanent(err)) {
			log.Error("child process cannot be restarted: giving up", "attempts", failures, "err", err)
			if s.opts.OnGiveUp != nil {
				s.opts.OnGiveUp(fmt.Errorf("%w: %s after %d attempts: %w", ErrGaveUp, s.opts.Name, failures, err))
			}
			return zero, false
		}
		log.Warn("child process restart failed", "attempt", failures, "retry_in", delay.String(), "err", err)
	}
}

func (s *Supervisor[C]) set(c C, up, restarted bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cur, s.up = c, up
	if restarted {
		s.restarts++
	}
}
