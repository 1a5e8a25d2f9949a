package incidents_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/incidents"
)

// rollupDiff recomputes both rollups from the base table with plain GROUP BY
// and returns every row on which they disagree (empty when exact). The
// package's rules are restated here, not taken from its SQL functions: a
// NULL source is the service "unknown", and resolved_at counts only for a
// resolved or closed row.
func rollupDiff(ctx context.Context, pool *pgxpool.Pool) ([]string, error) {
	const base = `base AS (
		SELECT coalesce(source, 'unknown') AS source, floor(extract(epoch FROM created_at) / 86400)::integer AS day, status,
		       extract(epoch FROM acknowledged_at - created_at) AS a,
		       extract(epoch FROM CASE WHEN status IN ('resolved', 'closed') THEN resolved_at END - created_at) AS r
		FROM incidents)`
	checks := map[string]string{
		"day counters": `WITH ` + base + `,
			want AS (SELECT source, day, count(*)::bigint total,
				count(*) FILTER (WHERE status = 'open')::bigint o, count(*) FILTER (WHERE status = 'acknowledged')::bigint ak,
				count(*) FILTER (WHERE status = 'resolved')::bigint rs, count(*) FILTER (WHERE status = 'closed')::bigint c,
				count(a)::bigint an, coalesce(sum(a), 0) asum, count(r)::bigint rn, coalesce(sum(r), 0) rsum
				FROM base GROUP BY source, day),
			got AS (SELECT source, day, total, open_n, ack_status, resolved_n, closed_n, ack_n, ack_sum, res_n, res_sum
				FROM incident_rollup_day WHERE total <> 0)
			(SELECT 'missing', * FROM (SELECT * FROM want EXCEPT SELECT * FROM got) x)
			UNION ALL (SELECT 'extra', * FROM (SELECT * FROM got EXCEPT SELECT * FROM want) y)`,
		"service counters": `WITH ` + base + `,
			want AS (SELECT source, count(*)::bigint total,
				count(*) FILTER (WHERE status = 'open')::bigint o, count(*) FILTER (WHERE status = 'acknowledged')::bigint ak,
				count(*) FILTER (WHERE status = 'resolved')::bigint rs, count(*) FILTER (WHERE status = 'closed')::bigint c,
				count(a)::bigint an, coalesce(sum(a), 0) asum, count(r)::bigint rn, coalesce(sum(r), 0) rsum
				FROM base GROUP BY source),
			got AS (SELECT source, total, open_n, ack_status, resolved_n, closed_n, ack_n, ack_sum, res_n, res_sum
				FROM incident_rollup_service WHERE total <> 0)
			(SELECT 'missing', * FROM (SELECT * FROM want EXCEPT SELECT * FROM got) x)
			UNION ALL (SELECT 'extra', * FROM (SELECT * FROM got EXCEPT SELECT * FROM want) y)`,
		"day histograms": `WITH ` + base + `,
			want AS (SELECT source, day, 'a' k, incidents_duration_bucket(a::float8) b, count(*)::integer n FROM base WHERE a IS NOT NULL GROUP BY 1, 2, 3, 4
				UNION ALL SELECT source, day, 'r', incidents_duration_bucket(r::float8), count(*)::integer FROM base WHERE r IS NOT NULL GROUP BY 1, 2, 3, 4),
			got AS (SELECT source, day, 'a' k, i b, incidents_hist_get(ack_hist, i) n FROM incident_rollup_day, generate_series(0, 242) i WHERE incidents_hist_get(ack_hist, i) <> 0
				UNION ALL SELECT source, day, 'r', i, incidents_hist_get(res_hist, i) FROM incident_rollup_day, generate_series(0, 242) i WHERE incidents_hist_get(res_hist, i) <> 0)
			(SELECT 'missing', * FROM (SELECT * FROM want EXCEPT SELECT * FROM got) x)
			UNION ALL (SELECT 'extra', * FROM (SELECT * FROM got EXCEPT SELECT * FROM want) y)`,
		"service histograms": `WITH ` + base + `,
			want AS (SELECT source, 'a' k, incidents_duration_bucket(a::float8) b, count(*)::integer n FROM base WHERE a IS NOT NULL GROUP BY 1, 2, 3
				UNION ALL SELECT source, 'r', incidents_duration_bucket(r::float8), count(*)::integer FROM base WHERE r IS NOT NULL GROUP BY 1, 2, 3),
			got AS (SELECT source, 'a' k, i b, incidents_hist_get(ack_hist, i) n FROM incident_rollup_service, generate_series(0, 242) i WHERE incidents_hist_get(ack_hist, i) <> 0
				UNION ALL SELECT source, 'r', i, incidents_hist_get(res_hist, i) FROM incident_rollup_service, generate_series(0, 242) i WHERE incidents_hist_get(res_hist, i) <> 0)
			(SELECT 'missing', * FROM (SELECT * FROM want EXCEPT SELECT * FROM got) x)
			UNION ALL (SELECT 'extra', * FROM (SELECT * FROM got EXCEPT SELECT * FROM want) y)`,
		"empty rows are zero": `SELECT 'nonzero', source, day FROM incident_rollup_day
				WHERE total = 0 AND (open_n, ack_status, resolved_n, closed_n, ack_n, ack_sum, res_n, res_sum) <> (0, 0, 0, 0, 0, 0, 0, 0)
			UNION ALL SELECT 'nonzero', source, 0 FROM incident_rollup_service
				WHERE total = 0 AND (open_n, ack_status, resolved_n, closed_n, ack_n, ack_sum, res_n, res_sum) <> (0, 0, 0, 0, 0, 0, 0, 0)`,
	}
	var diffs []string
	for name, q := range checks {
		rows, err := pool.Query(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		for rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				rows.Close()
				return nil, err
			}
			diffs = append(diffs, fmt.Sprintf("%s: %v", name, vals))
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	return diffs, nil
}

func requireRollupsExact(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	diffs, err := rollupDiff(ctxT(t), pool)
	require.NoError(t, err)
	require.Empty(t, diffs, "rollups differ from a GROUP BY recomputation")
	diffs, err = analyticsRollupDiff(ctxT(t), pool)
	require.NoError(t, err)
	require.Empty(t, diffs, "analytics rollups differ from a GROUP BY recomputation")
}

func TestRollupsExactUnderConcurrency(t *testing.T) {
	s, pool := newStore(t, incidents.Options{})
	ctx := ctxT(t)
	services := []string{"api", "db", "cache", "queue", "web"}
	var ids []string
	for i := 0; i < 40; i++ {
		in, err := s.Open(ctx, incidents.NewIncident{Title: fmt.Sprintf("i%d", i), Source: services[i%len(services)]})
		require.NoError(t, err)
		ids = append(ids, in.ID)
	}
	// A second pool plays "another program" writing plain SQL.
	other := testPool(t, pool.Config().ConnString())

	ops := 30
	if testing.Short() {
		ops = 10
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		failures []error
		done     int
	)
	for g := 0; g < 50; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			for i := 0; i < ops; i++ {
				id := ids[rng.IntN(len(ids))]
				var err error
				switch g % 10 {
				case 0: // plain SQL: move to another service and day
					_, err = other.Exec(ctx, `UPDATE incidents SET source = $2,
						created_at = created_at - make_interval(days => $3),
						updated_at = now() WHERE id = $1`, id, services[rng.IntN(len(services))], rng.IntN(3))
				case 1: // plain SQL insert with explicit times, sometimes acknowledged
					_, err = other.Exec(ctx, `INSERT INTO incidents (title, source, status, created_at, acknowledged_at)
						VALUES ('sql', $1, 'acknowledged', now() - interval '2 days', now() - interval '1 day')`,
						services[rng.IntN(len(services))])
				default:
					switch rng.IntN(3) {
					case 0:
						_, err = s.Acknowledge(ctx, id)
					case 1:
						_, err = s.Resolve(ctx, id)
					default:
						_, err = s.Reopen(ctx, id)
					}
					if errors.Is(err, incidents.ErrWrongState) {
						err = nil
					}
				}
				mu.Lock()
				if err != nil {
					failures = append(failures, err)
				} else {
					done++
				}
				mu.Unlock()
			}
		}(g)
	}
	wg.Wait()
	require.Empty(t, failures)
	assert.Equal(t, 50*ops, done)
	requireRollupsExact(t, pool)

	// Multi-row plain SQL, deletes, and an update of every column the
	// rollups depend on, from the other pool.
	_, err := other.Exec(ctx, `UPDATE incidents SET status = 'closed', resolved_at = coalesce(resolved_at, created_at + interval '3 hours')
		WHERE source = 'api' AND status = 'resolved'`)
	require.NoError(t, err)
	_, err = other.Exec(ctx, `UPDATE incidents SET created_at = created_at - interval '10 days' WHERE source = 'db'`)
	require.NoError(t, err)
	_, err = other.Exec(ctx, `DELETE FROM incidents WHERE source = 'cache'`)
	require.NoError(t, err)
	_, err = other.Exec(ctx, `DELETE FROM incidents WHERE id = $1`, ids[0])
	require.NoError(t, err)
	requireRollupsExact(t, pool)
	counts, err := s.ByService(ctx)
	require.NoError(t, err)
	for _, c := range counts {
		assert.NotEqual(t, "cache", c.Service, "a service without incidents is not listed")
	}

	// A rolled-back transaction leaves the rollups alone.
	err = pgx.BeginFunc(ctx, other, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM incidents`); err != nil {
			return err
		}
		return errors.New("roll back")
	})
	require.Error(t, err)
	requireRollupsExact(t, pool)

	// Rebuild gives the same rollups the triggers maintained. Sums are
	// compared as values: a numeric the triggers brought back to zero reads
	// "0.000000", a rebuilt one "0".
	var before, after []string
	snapshot := func() []string {
		rows, err := pool.Query(ctx, `SELECT source || ':' || total || ':' || trim_scale(ack_sum) || ':' || trim_scale(res_sum) || ':' ||
			(SELECT string_agg(incidents_hist_get(ack_hist, i) || '/' || incidents_hist_get(res_hist, i), ',' ORDER BY i)
			 FROM generate_series(0, 242) i)
			FROM incident_rollup_service WHERE total > 0 ORDER BY source`)
		require.NoError(t, err)
		out, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		return out
	}
	before = snapshot()
	require.NoError(t, s.RebuildRollups(ctx))
	after = snapshot()
	assert.Equal(t, before, after)
	requireRollupsExact(t, pool)

	_, err = other.Exec(ctx, `TRUNCATE incidents`)
	require.NoError(t, err)
	requireRollupsExact(t, pool)
	counts, err = s.ByService(ctx)
	require.NoError(t, err)
	assert.Empty(t, counts)
	assert.False(t, strings.Contains(fmt.Sprint(counts), "api"))
}

// Multi-row statements from several connections, each touching every
// service in its own random row order, neither deadlock on the rollup rows
// nor lose a change: the triggers apply a statement's changes in one sorted
// order. (Row-level triggers, which lock rollup rows in the order rows are
// written, deadlock here.)
func TestRollupsMultiRowStatementsNoDeadlock(t *testing.T) {
	_, pool := newStore(t, incidents.Options{})
	ctx := ctxT(t)
	const writers = 6
	_, err := pool.Exec(ctx, `INSERT INTO incidents (title, source, labels, created_at)
		SELECT 'bulk', 'svc-' || (i % 7), jsonb_build_object('part', (i % $1)::text), now() - make_interval(hours => i)
		FROM generate_series(1, 420) i`, writers)
	require.NoError(t, err)
	requireRollupsExact(t, pool)

	rounds := 15
	if testing.Short() {
		rounds = 5
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers*rounds)
	for g := 0; g < writers; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			part := fmt.Sprint(g)
			for i := 0; i < rounds; i++ {
				// Rows of this writer only (no base-row conflicts), every
				// service, random order; status, service and day all move.
				_, err := pool.Exec(ctx, `UPDATE incidents i SET
					status = CASE WHEN i.status = 'open' THEN 'closed' ELSE 'open' END,
					source = CASE WHEN random() < 0.3 THEN 'svc-' || floor(random() * 7)::int ELSE i.source END,
					created_at = i.created_at - make_interval(hours => floor(random() * 30)::int)
					FROM (SELECT id FROM incidents WHERE labels->>'part' = $1 ORDER BY random()) o
					WHERE i.id = o.id`, part)
				if err == nil && i%5 == 4 {
					_, err = pool.Exec(ctx, `WITH d AS (DELETE FROM incidents WHERE id IN (
						SELECT id FROM incidents WHERE labels->>'part' = $1 ORDER BY random() LIMIT 3) RETURNING source)
						INSERT INTO incidents (title, source, labels) SELECT 'again', source, jsonb_build_object('part', $1::text) FROM d`, part)
				}
				errs <- err
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	requireRollupsExact(t, pool)

	// INSERT ... ON CONFLICT DO UPDATE and MERGE fire the triggers of each
	// action they take, with the right transition tables.
	_, err = pool.Exec(ctx, `INSERT INTO incidents (id, title, source, status, acknowledged_at, created_at)
		SELECT id, 'upsert', 'svc-upsert', 'acknowledged', now(), now() - interval '1 hour'
		FROM incidents WHERE labels->>'part' = '0' LIMIT 5
		ON CONFLICT (id) DO UPDATE SET source = excluded.source, status = excluded.status,
			acknowledged_at = excluded.acknowledged_at, created_at = excluded.created_at`)
	require.NoError(t, err)
	requireRollupsExact(t, pool)
	_, err = pool.Exec(ctx, `MERGE INTO incidents i
		USING (SELECT id, labels->>'part' AS part FROM incidents WHERE labels->>'part' IN ('1', '2')) s ON i.id = s.id
		WHEN MATCHED AND s.part = '1' THEN DELETE
		WHEN MATCHED THEN UPDATE SET status = 'closed', resolved_at = i.created_at + interval '5 minutes'`)
	require.NoError(t, err)
	requireRollupsExact(t, pool)
}
