package broadcast

import (
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
)

// stallAfter is how long a writer may be blocked on one client before the
// hub hands the clients waiting behind it to another writer. Writers block
// only on the portable write path: where raw sends exist, a write that
// would block is finished by a goroutine of its own (client.finishWrite).
const stallAfter = 10 * time.Millisecond

// maxChunk is the most clients a writer takes from the queue at once.
const maxChunk = 64

// writerPool hands clients with pending messages to a few writer
// goroutines, which exist only while there is work and take clients from
// the queue in chunks of up to maxChunk (docs/design.md, "Writer pool"). A
// writer stuck on a slow client (portable path) is not waited for:
// Hub.maintain sees it, takes back the rest of its chunk and starts another
// writer, so the pool only shrinks back once the slow write ends or times
// out.
type writerPool struct {
	mu      sync.Mutex
	ready   []*client // clients waiting for a writer, FIFO from head
	head    int
	writers []*writer
	kick    chan struct{} // tells Hub.maintain to watch for stalls
}

// writer is one writer goroutine's state. chunk is replaced only under
// writerPool.mu; its clients are claimed one at a time with next, by the
// writer or, once it is stalled, by Hub.replaceStalledWriters.
type writer struct {
	since atomic.Int64 // UnixNano when its current write began, 0 between writes
	next  atomic.Int64 // index in chunk of the next client to claim
	chunk []*client
	again []*client // clients of the chunk with more to write

	batch []*message // the messages of the current write (client.writeOne)
	buf   []byte     // their frames, when there are several

	// Deliveries per topic since the last flush: added to the hub's
	// counters once per chunk rather than once per write, so that writers
	// on different cores do not fight over the counters' cache lines.
	counts  [maxTopics]uint64
	touched uint64 // topics with counts
}

// delivered counts one delivery of a message of topic ti.
func (w *writer) delivered(ti int) {
	w.counts[ti]++
	w.touched |= 1 << uint(ti)
}

// flush adds the counted deliveries to the hub's metrics.
func (w *writer) flush(m *hubMetrics) {
	for t := w.touched; t != 0; t &= t - 1 {
		ti := bits.TrailingZeros64(t)
		m.delivered[ti].Add(w.counts[ti])
		w.counts[ti] = 0
	}
	w.touched = 0
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

// runWriter takes a chunk of waiting clients, writes one message to each,
// puts those with more at the end of the line, and exits when no client is
// waiting.
func (h *Hub) runWriter(w *writer) {
	defer h.wg.Done()
	p := &h.pool
	for {
		p.mu.Lock()
		p.ready = append(p.ready, w.again...)
		clear(w.again)
		w.again = w.again[:0]
		clear(w.chunk)
		waiting := len(p.ready) - p.head
		if waiting == 0 {
			p.ready = p.ready[:0]
			if cap(p.ready) > 1<<16 {
				p.ready = nil
			}
			p.head = 0
			p.removeLocked(w)
			p.mu.Unlock()
			return
		}
		n := min(maxChunk, (waiting+len(p.writers)-1)/len(p.writers))
		w.chunk = append(w.chunk[:0], p.ready[p.head:p.head+n]...)
		clear(p.ready[p.head : p.head+n])
		p.head += n
		if p.head > 1024 && p.head*2 > len(p.ready) {
			m := copy(p.ready, p.ready[p.head:])
			clear(p.ready[m:])
			p.ready = p.ready[:m]
			p.head = 0
		}
		w.next.Store(0)
		p.mu.Unlock()

		for {
			i := w.next.Add(1) - 1
			if i >= int64(len(w.chunk)) {
				break
			}
			c := w.chunk[i]
			now := time.Now().UnixNano()
			w.since.Store(now)
			if c.writeOne(now, w) {
				w.again = append(w.again, c)
			}
			w.since.Store(0)
		}
		w.flush(&h.metrics)
	}
}

// removeLocked forgets an exiting writer.
func (p *writerPool) removeLocked(w *writer) {
	for i, x := range p.writers {
		if x == w {
			last := len(p.writers) - 1
			p.writers[i] = p.writers[last]
			p.writers[last] = nil
			p.writers = p.writers[:last]
			return
		}
	}
}

// replaceStalledWriters takes back the unclaimed clients of every writer
// blocked for longer than stallAfter (now) and starts writers for the
// clients waiting. It reports whether the caller must keep watching:
// while clients wait for a writer, or a writer still holds clients it has
// not begun (it may block on the one it is writing before it reaches
// them).
func (h *Hub) replaceStalledWriters(now time.Time) (watch bool) {
	p := &h.pool
	p.mu.Lock()
	stalled := now.Add(-stallAfter).UnixNano()
	active := 0
	for _, w := range p.writers {
		s := w.since.Load()
		if s == 0 || s > stalled {
			active++
			if w.next.Load() < int64(len(w.chunk)) {
				watch = true
			}
			continue
		}
		// Claim everything the writer has not begun; it stops at its
		// next claim.
		if k := w.next.Swap(int64(len(w.chunk))); k < int64(len(w.chunk)) {
			p.ready = append(p.ready, w.chunk[k:]...)
		}
	}
	waiting := len(p.ready) - p.head
	if waiting == 0 {
		p.mu.Unlock()
		return watch
	}
	ws := h.addWritersLocked(min(h.opts.Writers-active, waiting))
	p.mu.Unlock()
	for _, w := range ws {
		go h.runWriter(w)
	}
	return true
}
