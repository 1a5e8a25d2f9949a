package broadcast

import (
	"sync"
	"sync/atomic"
	"time"
)

// stallAfter is how long a writer may be blocked on one client before the
// hub starts another writer for the clients waiting behind it.
const stallAfter = 10 * time.Millisecond

// writerPool hands clients with pending messages to a few writer
// goroutines. Writing to clients in turn from a few goroutines, rather than
// from a goroutine per client, keeps a fan-out to thousands of clients cheap
// (no goroutine to create, wake or grow per delivery). Writers exist only
// while there is work. A writer stuck on a slow client (its socket buffer
// full) is not waited for: Hub.maintain sees it and starts another, so the
// pool only shrinks back once the slow write ends or times out.
type writerPool struct {
	mu      sync.Mutex
	ready   []*client // clients waiting for a writer, FIFO from head
	head    int
	writers []*writer
	kick    chan struct{} // tells Hub.maintain to watch for stalls
}

type writer struct {
	since atomic.Int64 // UnixNano when its current write began, 0 between writes
}

// schedule hands one client to the writers.
func (h *Hub) schedule(c *client) {
	var one [1]*client
	one[0] = c
	h.scheduleAll(one[:])
}

// scheduleAll hands clients to the writers, starting writers up to
// HubOptions.Writers.
func (h *Hub) scheduleAll(cs []*client) {
	if len(cs) == 0 {
		return
	}
	p := &h.pool
	p.mu.Lock()
	p.ready = append(p.ready, cs...)
	start := min(h.opts.Writers-len(p.writers), len(cs))
	ws := h.addWritersLocked(start)
	p.mu.Unlock()
	for _, w := range ws {
		go h.runWriter(w)
	}
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// addWritersLocked registers n new writers (to be started by the caller).
func (h *Hub) addWritersLocked(n int) []*writer {
	if n <= 0 {
		return nil
	}
	ws := make([]*writer, n)
	for i := range ws {
		ws[i] = &writer{}
	}
	h.pool.writers = append(h.pool.writers, ws...)
	h.wg.Add(n)
	return ws
}

// runWriter writes one message at a time to the next waiting client, puts
// the client back at the end of the line if it has more, and exits when no
// client is waiting.
func (h *Hub) runWriter(w *writer) {
	defer h.wg.Done()
	p := &h.pool
	for {
		p.mu.Lock()
		if p.head == len(p.ready) {
			if cap(p.ready) > 1<<16 {
				p.ready = nil
			} else {
				p.ready = p.ready[:0]
			}
			p.head = 0
			for i, x := range p.writers {
				if x == w {
					last := len(p.writers) - 1
					p.writers[i] = p.writers[last]
					p.writers[last] = nil
					p.writers = p.writers[:last]
					break
				}
			}
			p.mu.Unlock()
			return
		}
		c := p.ready[p.head]
		p.ready[p.head] = nil
		p.head++
		if p.head > 1024 && p.head*2 > len(p.ready) {
			n := copy(p.ready, p.ready[p.head:])
			clear(p.ready[n:])
			p.ready = p.ready[:n]
			p.head = 0
		}
		now := time.Now().UnixNano()
		w.since.Store(now)
		p.mu.Unlock()

		more := c.writeOne(now)
		w.since.Store(0)
		if more {
			p.mu.Lock()
			p.ready = append(p.ready, c)
			p.mu.Unlock()
		}
	}
}

// replaceStalledWriters starts a writer for each one blocked for longer than
// stallAfter while clients are waiting. It reports whether clients are
// still waiting (so the caller keeps watching).
func (h *Hub) replaceStalledWriters() bool {
	p := &h.pool
	p.mu.Lock()
	waiting := len(p.ready) - p.head
	if waiting == 0 {
		p.mu.Unlock()
		return false
	}
	stalled := time.Now().Add(-stallAfter).UnixNano()
	active := 0
	for _, w := range p.writers {
		if s := w.since.Load(); s == 0 || s > stalled {
			active++
		}
	}
	ws := h.addWritersLocked(min(h.opts.Writers-active, waiting))
	p.mu.Unlock()
	for _, w := range ws {
		go h.runWriter(w)
	}
	return true
}
