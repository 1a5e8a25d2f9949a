package incidents

import (
	"context"
	"fmt"
	"regexp"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// An analytics read runs a rollup statement and an edge statement (the
// base-table rows between bucket bounds and rollup units). Both must see
// one snapshot, or a write committed between them would be counted once
// in the rollup and again (or not at all) in the corrections. runQueries
// gives them one: a REPEATABLE READ, read-only transaction, on one
// connection, or on two when the pool has a second one at once, the second
// importing the first's exported snapshot, so that PostgreSQL runs both
// at once (docs/analytics.md).

// secondConnWait bounds the wait for a second connection: past it the
// statements run one after the other on the first. A bounded wait is what
// keeps readers that each hold one connection from waiting on each other.
const secondConnWait = 2 * time.Millisecond

// snapshotID is the form of pg_export_snapshot's answer, checked before
// it is written into SET TRANSACTION SNAPSHOT (which takes no parameter).
var snapshotID = regexp.MustCompile(`^[0-9A-F]+-[0-9A-F]+(-[0-9]+)?$`)

const (
	beginSnapshot = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
	// The planner cannot estimate the edge ranges of a LATERAL and would
	// JIT-compile for millions of rows that never come: off for these
	// transactions, which read a few thousand rows.
	jitOff = "SET LOCAL jit = off"
)

// runQueries runs the statements in one snapshot and hands each result to
// its reader; an empty statement is skipped. With two statements, the
// readers may run at the same time (on two goroutines), so they must not
// share state; with one connection they run in order.
func (s *Store) runQueries(ctx context.Context, sqls []string, args [][]any, read []func(pgx.Rows) error) error {
	var use []int
	for i, q := range sqls {
		if q != "" {
			use = append(use, i)
		}
	}
	if len(use) == 0 {
		return nil
	}
	c1, err := s.pool.Acquire(ctx)
	if err != nil {
		return errAnalytics(err)
	}
	defer c1.Release()
	var c2 *pgxpool.Conn
	if st := s.pool.Stat(); len(use) == 2 && (st.IdleConns() > 0 || st.TotalConns() < st.MaxConns()) {
		actx, cancel := context.WithTimeout(ctx, secondConnWait)
		c2, _ = s.pool.Acquire(actx) // none in time: one connection
		cancel()
	}
	if c2 == nil {
		return pipelineTx(ctx, c1.Conn(), true, sqls, args, read, use)
	}
	defer c2.Release()
	return parallelTx(ctx, c1.Conn(), c2.Conn(), sqls, args, read, use)
}

// parallelTx runs statement use[0] on c1 and use[1] on c2 at once, c2 in
// the snapshot c1 exports. c1's transaction must outlive c2's import of
// its snapshot; if c2 has not imported it by the time c1's statement is
// done (a PgBouncer with no free server connection would hold c2's
// BEGIN until c1's transaction ends), c1 gives c2 up and runs use[1]
// itself.
func parallelTx(ctx context.Context, c1, c2 *pgx.Conn, sqls []string, args [][]any, read []func(pgx.Rows) error, use []int) error {
	var id string
	var b pgx.Batch
	b.Queue(beginSnapshot)
	b.Queue("SELECT pg_export_snapshot()").QueryRow(func(r pgx.Row) error { return r.Scan(&id) })
	if err := c1.SendBatch(ctx, &b).Close(); err != nil {
		rollback(c1)
		return errAnalytics(err)
	}
	if !snapshotID.MatchString(id) {
		rollback(c1)
		return errAnalytics(fmt.Errorf("unexpected snapshot identifier %q", id))
	}
	h := &handoff{}
	ctx2, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- h.run(ctx2, c2, id, sqls, args, read, use[1]) }()
	err := pipelineTx(ctx, c1, false, sqls, args, read, use[:1])
	if err != nil {
		cancel()
	} else if h.abandon() {
		cancel()
		err = pipelineTx(ctx, c1, false, sqls, args, read, use[1:])
	}
	err2 := <-done // c2 has imported or given up: c1 may end
	if err == nil {
		if _, cerr := c1.Exec(ctx, "COMMIT"); cerr != nil {
			err = errAnalytics(cerr)
		}
	} else {
		rollback(c1)
	}
	if err == nil && !h.abandoned {
		err = err2
	}
	return err
}

// handoff is the state of the second connection's statement: pending
// until it has imported the snapshot, then its own, unless the first
// connection abandoned it first.
type handoff struct {
	mu                  sync.Mutex
	imported, abandoned bool
}

// abandon gives the statement up if it has not imported the snapshot yet,
// and reports whether it did.
func (h *handoff) abandon() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.imported {
		h.abandoned = true
	}
	return h.abandoned
}

// run begins c's transaction in the snapshot and, unless abandoned by
// then, runs statement i and ends the transaction.
func (h *handoff) run(ctx context.Context, c *pgx.Conn, snapshot string, sqls []string, args [][]any, read []func(pgx.Rows) error, i int) error {
	var b pgx.Batch
	b.Queue(beginSnapshot)
	b.Queue("SET TRANSACTION SNAPSHOT '" + snapshot + "'")
	err := c.SendBatch(ctx, &b).Close()
	h.mu.Lock()
	go1 := err == nil && !h.abandoned
	h.imported = go1
	h.mu.Unlock()
	if !go1 {
		rollback(c)
		if err != nil {
			return errAnalytics(err)
		}
		return nil
	}
	err = pipelineTx(ctx, c, false, sqls, args, read, []int{i})
	if err == nil {
		if _, cerr := c.Exec(ctx, "COMMIT"); cerr != nil {
			err = errAnalytics(cerr)
		}
	}
	if err != nil {
		rollback(c)
	}
	return err
}

// pipelineTx sends, in one round trip, the statements use (in order) with
// jit off, in a transaction that it begins and ends when begin is set;
// begin unset: in the one open on c, which it leaves open.
func pipelineTx(ctx context.Context, c *pgx.Conn, begin bool, sqls []string, args [][]any, read []func(pgx.Rows) error, use []int) error {
	var b pgx.Batch
	if begin {
		b.Queue(beginSnapshot)
	}
	b.Queue(jitOff)
	for _, i := range use {
		b.Queue(sqls[i], args[i]...)
	}
	if begin {
		b.Queue("COMMIT")
	}
	br := c.SendBatch(ctx, &b)
	err := readBatch(br, b.Len()-len(use)-boolInt(begin), sqls, read, use)
	if cerr := br.Close(); err == nil && cerr != nil {
		err = errAnalytics(cerr)
	}
	if err != nil && begin {
		rollback(c)
	}
	return err
}

// readBatch skips the first pre results of br (no rows), then hands the
// results of the statements use to their readers.
func readBatch(br pgx.BatchResults, pre int, sqls []string, read []func(pgx.Rows) error, use []int) error {
	for i := 0; i < pre; i++ {
		if _, err := br.Exec(); err != nil {
			return errAnalytics(err)
		}
	}
	for _, i := range use {
		rows, err := br.Query()
		if err != nil {
			return errAnalytics(err)
		}
		if err := read[i](rows); err != nil {
			return err
		}
	}
	return nil
}

// rollback ends a failed transaction on c, so that the connection goes back
// to the pool usable (the pool closes one left in a transaction).
func rollback(c *pgx.Conn) {
	if c.PgConn().TxStatus() == 'I' || c.IsClosed() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, _ = c.Exec(ctx, "ROLLBACK")
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
