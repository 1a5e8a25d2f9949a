//go:build linux

package servicemetrics_test

import (
	"bytes"
	"context"
	"fmt"
	"hash/maphash"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// fanoutDriver connects n clients (fanoutConn) to a broadcaster, reads
// them in one fanoutLoop and keeps, for every message broadcast, when each
// client got it. A message is known by its bytes (a hash of its first 256
// and last 64 bytes and its length): a broadcaster sends the same bytes to
// every client, and every broadcast of service-metrics carries its own
// timestamp. The welcome, acks and errors are per client and not counted.
type fanoutDriver struct {
	n     int
	start time.Time
	loop  *fanoutLoop
	done  chan struct{}

	mu       sync.Mutex
	msgs     map[fanoutKey]*fanoutMsg
	order    []*fanoutMsg // in order of first arrival
	polls    []*fanoutMsg // the instant_metrics messages: one per poll
	welcomes int
	ended    int
	endErr   error
	record   bool
	recorded []fanoutRecorded // the broadcasts, for the Node reference
	changed  chan struct{}    // signalled (non-blocking) on every new message
}

type fanoutKey struct {
	hash uint64
	size int
}

// fanoutMsg is one broadcast message and its deliveries.
type fanoutMsg struct {
	typ   string
	wire  int     // bytes on the wire: payload plus frame header
	poll  int     // the poll it belongs to: the instant_metrics last seen before it (-1: none)
	first int64   // first arrival, ns since the driver's start
	at    []int64 // every client's arrival, in the order seen
	ids   []int32 // the clients, in the same order
	seen  []bool  // by client
	dups  int     // deliveries to a client that had the message already
}

// fanoutRecorded is a broadcast message and its first arrival.
type fanoutRecorded struct {
	at      int64
	poll    int
	payload []byte
}

var fanoutSeed = maphash.MakeSeed()

var debugFanout = os.Getenv("SERVICEMETRICS_BENCH_DEBUG") != ""

var (
	prefixWelcome = []byte(`{"type":"connection"`)
	prefixAck     = []byte(`{"type":"ack"`)
	prefixError   = []byte(`{"type":"error"`)
	prefixInstant = []byte(`{"type":"instant_metrics"`)
	prefixType    = []byte(`{"type":"`)
)

func newFanoutDriver(n int, record bool) (*fanoutDriver, error) {
	loop, err := newFanoutLoop(n)
	if err != nil {
		return nil, err
	}
	d := &fanoutDriver{
		n: n, start: time.Now(), loop: loop, done: make(chan struct{}),
		msgs: map[fanoutKey]*fanoutMsg{}, record: record, changed: make(chan struct{}, 1),
	}
	go func() {
		defer close(d.done)
		loop.run(d.now, d.onMessage, d.onEnd)
	}()
	return d, nil
}

func (d *fanoutDriver) now() int64 { return int64(time.Since(d.start)) }

// connect dials the n clients to ws://host+path, 64 at a time.
func (d *fanoutDriver) connect(ctx context.Context, host, path string) error {
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	var failed atomic.Pointer[error]
	for id := range d.n {
		sem <- struct{}{}
		if failed.Load() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := d.dialOne(ctx, id, host, path); err != nil {
				failed.CompareAndSwap(nil, &err)
			}
		})
	}
	wg.Wait()
	if p := failed.Load(); p != nil {
		return *p
	}
	return nil
}

func (d *fanoutDriver) dialOne(ctx context.Context, id int, host, path string) error {
	var c *fanoutConn
	var err error
	for attempt := 0; ; attempt++ {
		dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		c, err = dialFanout(dctx, host, path)
		cancel()
		if err == nil {
			break
		}
		if attempt == 4 || ctx.Err() != nil {
			return fmt.Errorf("client %d: %w", id, err)
		}
		time.Sleep(time.Duration(attempt+1) * 100 * time.Millisecond)
	}
	// What came with the handshake's answer is handled here: the loop
	// only sees new data on the socket.
	p := c.pending
	c.pending = nil
	at := d.now()
	if err := c.consume(p, func(op byte, p []byte) { d.onMessage(id, at, op, p) }); err != nil {
		_ = syscall.Close(c.fd)
		return fmt.Errorf("client %d: %w", id, err)
	}
	if err := d.loop.add(id, c); err != nil {
		_ = syscall.Close(c.fd)
		return err
	}
	return nil
}

func (d *fanoutDriver) onMessage(id int, at int64, op byte, p []byte) {
	if op != 1 {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case bytes.HasPrefix(p, prefixWelcome):
		d.welcomes++
		return
	case bytes.HasPrefix(p, prefixAck), bytes.HasPrefix(p, prefixError):
		return
	}
	var h maphash.Hash
	h.SetSeed(fanoutSeed)
	h.Write(p[:min(len(p), 256)])
	h.Write(p[max(0, len(p)-64):])
	k := fanoutKey{h.Sum64(), len(p)}
	m := d.msgs[k]
	if m == nil {
		m = &fanoutMsg{typ: messageType(p), wire: len(p) + frameHeader(len(p)), first: at, at: make([]int64, 0, d.n), ids: make([]int32, 0, d.n), seen: make([]bool, d.n)}
		d.msgs[k] = m
		d.order = append(d.order, m)
		if bytes.HasPrefix(p, prefixInstant) {
			d.polls = append(d.polls, m)
		}
		// Polls are told apart by their messages, not by time: one read
		// may bring several polls at once.
		m.poll = len(d.polls) - 1
		if d.record {
			// Every client gets the same bytes; the cadence is the
			// first arrival of each message, the closest the driver
			// gets to the publish times.
			d.recorded = append(d.recorded, fanoutRecorded{at: at, poll: m.poll, payload: bytes.Clone(p)})
		}
		select {
		case d.changed <- struct{}{}:
		default:
		}
	}
	if m.seen[id] {
		m.dups++
		return
	}
	m.seen[id] = true
	m.at = append(m.at, at)
	m.ids = append(m.ids, int32(id))
	if len(m.at) == d.n {
		select {
		case d.changed <- struct{}{}:
		default:
		}
	}
}

func (d *fanoutDriver) onEnd(id int, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ended++
	if d.endErr == nil {
		d.endErr = fmt.Errorf("client %d ended: %w", id, err)
	}
}

// messageType is the "type" of a message that starts with it.
func messageType(p []byte) string {
	if !bytes.HasPrefix(p, prefixType) {
		return "?"
	}
	p = p[len(prefixType):]
	if i := bytes.IndexByte(p, '"'); i >= 0 && i < 64 {
		return string(p[:i])
	}
	return "?"
}

// frameHeader is the size of an unmasked server frame header for n bytes.
func frameHeader(n int) int {
	switch {
	case n < 126:
		return 2
	case n < 1<<16:
		return 4
	}
	return 10
}

// waitFor calls cond under the driver's lock whenever a message arrives
// (and every 100 ms) until it is true, a client ended, or timeout.
func (d *fanoutDriver) waitFor(timeout time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		d.mu.Lock()
		ok, ended, endErr := cond(), d.ended, d.endErr
		d.mu.Unlock()
		switch {
		case ok:
			return nil
		case ended > 0:
			return fmt.Errorf("waiting for %s: %d clients disconnected, first: %w", what, ended, endErr)
		case time.Now().After(deadline):
			return fmt.Errorf("waiting for %s: not within %v", what, timeout)
		}
		select {
		case <-d.changed:
		case <-tick.C:
		}
	}
}

// waitPolls waits until the driver has seen k polls in all.
func (d *fanoutDriver) waitPolls(k int, timeout time.Duration) error {
	return d.waitFor(timeout, fmt.Sprintf("poll %d", k), func() bool { return len(d.polls) >= k })
}

// pollCount is how many polls the driver has seen.
func (d *fanoutDriver) pollCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.polls)
}

// waitDelivered waits until every message of polls [from, to) has reached
// every client, or until no delivery happened for quiet.
func (d *fanoutDriver) waitDelivered(from, to int, quiet, timeout time.Duration) error {
	last, lastChange := -1, time.Now()
	return d.waitFor(timeout, "deliveries", func() bool {
		pending, got := 0, 0
		for _, m := range d.order {
			if m.poll >= from && m.poll < to {
				got += len(m.at)
				pending += d.n - len(m.at)
			}
		}
		if got != last {
			last, lastChange = got, time.Now()
		}
		return pending == 0 || time.Since(lastChange) > quiet
	})
}

// fanoutStats are the deliveries of the messages of a window of polls.
type fanoutStats struct {
	polls, msgs, deliveries, missed int
	dups, allDups                   int // a message twice to one client, in the window and since connect
	p50, p99, max                   time.Duration
	bytesPerClientPoll              float64
	types                           map[string]int
}

// stats computes the deliveries of the messages of polls [from, to).
func (d *fanoutDriver) stats(from, to int) fanoutStats {
	d.mu.Lock()
	defer d.mu.Unlock()
	polls := to - from
	s := fanoutStats{polls: polls, types: map[string]int{}}
	for _, m := range d.order {
		s.allDups += m.dups
	}
	var delays []int64
	var wire int64
	for _, m := range d.order {
		if m.poll < from || m.poll >= to {
			continue
		}
		s.msgs++
		s.types[m.typ]++
		s.dups += m.dups
		s.deliveries += len(m.at)
		s.missed += d.n - len(m.at)
		wire += int64(m.wire) * int64(len(m.at))
		first := slices.Min(m.at)
		late := 0
		for j, a := range m.at {
			delays = append(delays, a-first)
			if debugFanout && a-first > int64(200*time.Millisecond) {
				if late++; late <= 10 {
					fmt.Printf("late: %s first=%v client %d +%v (arrival #%d)\n", m.typ, time.Duration(m.first), m.ids[j], time.Duration(a-first), j)
				}
			}
		}
		if late > 0 {
			fmt.Printf("late: %s first=%v: %d of %d late\n", m.typ, time.Duration(m.first), late, len(m.at))
		}
	}
	slices.Sort(delays)
	q := func(f float64) time.Duration {
		if len(delays) == 0 {
			return 0
		}
		return time.Duration(delays[min(len(delays)-1, int(f*float64(len(delays))))])
	}
	s.p50, s.p99, s.max = q(0.50), q(0.99), q(1)
	if polls > 0 {
		s.bytesPerClientPoll = float64(wire) / float64(d.n) / float64(polls)
	}
	return s
}

// recording returns the broadcasts of poll i and after, in order.
func (d *fanoutDriver) recording(i int) []fanoutRecorded {
	d.mu.Lock()
	defer d.mu.Unlock()
	j := slices.IndexFunc(d.recorded, func(r fanoutRecorded) bool { return r.poll >= i })
	if j < 0 {
		return nil
	}
	return slices.Clone(d.recorded[j:])
}

// close stops the loop and closes every connection.
func (d *fanoutDriver) close() { d.loop.stopAndWait(d.done) }
