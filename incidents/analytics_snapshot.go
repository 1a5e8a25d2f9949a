package incidents

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// An analytics read runs a rollup statement and an edge statement (the
// base-table rows between bucket bounds and rollup units). Both must see
// one snapshot, or a write committed between them would be counted once
// in the rollup and again (or not at all) in the corrections: runQueries
// runs them in one REPEATABLE READ, read-only transaction, pipelined on
// one connection (docs/design.md, "Analytics reads").

const (
	beginSnapshot = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
	// The planner cannot estimate the edge ranges of a LATERAL and would
	// JIT-compile for millions of rows that never come: off for these
	// transactions, which read a few thousand rows.
	jitOff = "SET LOCAL jit = off"
)

// runQueries runs the statements in one snapshot and one round trip, and
// hands each result to its reader, in order; an empty statement is
// skipped.
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
	c, err := s.pool.Acquire(ctx)
	if err != nil {
		return errAnalytics(err)
	}
	defer c.Release()
	return pipelineTx(ctx, c.Conn(), sqls, args, read, use)
}

// pipelineTx sends the statements use (in order), with jit off, in one
// transaction and one round trip.
func pipelineTx(ctx context.Context, c *pgx.Conn, sqls []string, args [][]any, read []func(pgx.Rows) error, use []int) error {
	var b pgx.Batch
	b.Queue(beginSnapshot)
	b.Queue(jitOff)
	for _, i := range use {
		b.Queue(sqls[i], args[i]...)
	}
	b.Queue("COMMIT")
	br := c.SendBatch(ctx, &b)
	err := readBatch(br, 2, sqls, read, use)
	if cerr := br.Close(); err == nil && cerr != nil {
		err = errAnalytics(cerr)
	}
	if err != nil {
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
