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

// runQueries runs the statements, with jit off, in one snapshot and one
// round trip, and hands each result to its reader, in order; an empty
// statement is skipped.
func (s *Store) runQueries(ctx context.Context, sqls []string, args [][]any, read []func(pgx.Rows) error) error {
	var b pgx.Batch
	b.Queue(beginSnapshot)
	b.Queue(jitOff)
	for i, q := range sqls {
		if q != "" {
			b.Queue(q, args[i]...)
		}
	}
	if b.Len() == 2 {
		return nil
	}
	b.Queue("COMMIT")
	c, err := s.pool.Acquire(ctx)
	if err != nil {
		return errAnalytics(err)
	}
	defer c.Release()
	br := c.SendBatch(ctx, &b)
	err = readBatch(br, sqls, read)
	if cerr := br.Close(); err == nil && cerr != nil {
		err = errAnalytics(cerr)
	}
	if err != nil {
		rollback(c.Conn())
	}
	return err
}

// readBatch skips the results of BEGIN and SET, then hands the result of
// each non-empty statement to its reader.
func readBatch(br pgx.BatchResults, sqls []string, read []func(pgx.Rows) error) error {
	for range 2 {
		if _, err := br.Exec(); err != nil {
			return errAnalytics(err)
		}
	}
	for i, q := range sqls {
		if q == "" {
			continue
		}
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
