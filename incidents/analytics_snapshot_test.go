package incidents_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/incidents"
	"github.com/promflow/promflow/internal/testutil"
)

// poolOf opens a second pool on the database of pool, with at most max
// connections.
func poolOf(t *testing.T, pool *pgxpool.Pool, max int32) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(pool.Config().ConnString())
	require.NoError(t, err)
	cfg.MaxConns = max
	p, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(p.Close)
	return p
}

// Many reads at once on a pool of two all finish, and leave no
// connection in a transaction.
func TestAnalyticsReadsShareASmallPool(t *testing.T) {
	s, pool := newStore(t, incidents.Options{})
	loadAnalyticsData(t, s, pool)
	ctx, cancel := context.WithTimeout(ctxT(t), 60*time.Second)
	defer cancel()
	small := incidents.NewStore(poolOf(t, pool, 2), incidents.Options{ExactPercentileLimit: -1, Logger: quietLogger})
	q := incidents.TrendsQuery{Bucket: incidents.BucketWeek, Location: paris, GroupBy: incidents.GroupByService,
		From: time.Date(2026, 3, 22, 0, 0, 0, 0, paris), To: time.Date(2026, 11, 3, 0, 0, 0, 0, paris)}
	want, err := small.Trends(ctx, q)
	require.NoError(t, err)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 4; i++ {
				got, err := small.Trends(ctx, q)
				if err == nil && len(got) != len(want) {
					err = assert.AnError
				}
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	var idle int
	require.NoError(t, small.Pool().QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND state LIKE 'idle in transaction%'`).Scan(&idle))
	assert.Zero(t, idle, "no connection left in a transaction")
}

// The rollup rows and the edge rows of a read come from one snapshot: with
// a writer adding incidents ten per transaction between a Paris week bound
// and its UTC Monday (rows the rollup counts in the week before, which the
// edge rows move), every read sees the week before unchanged and the week
// after grown by a multiple of ten.
func TestAnalyticsReadsOneSnapshot(t *testing.T) {
	_, pool := newStore(t, incidents.Options{})
	ctx := ctxT(t)
	// Monday 2026-06-15 00:00 in Paris is 2026-06-14 22:00 UTC.
	bound := time.Date(2026, 6, 15, 0, 0, 0, 0, paris)
	base := func(at time.Time, n int) {
		_, err := pool.Exec(ctx, `INSERT INTO incidents (title, severity, source, status, created_at, updated_at)
			SELECT 'i' || g, 'high', 'api', 'open', $1::timestamptz, $1::timestamptz FROM generate_series(1, $2) g`, at, n)
		require.NoError(t, err)
	}
	base(bound.Add(-48*time.Hour), 7)  // the week before
	base(bound.Add(30*time.Minute), 3) // after the bound, before the UTC Monday
	reader := incidents.NewStore(poolOf(t, pool, 4), incidents.Options{ExactPercentileLimit: -1, Logger: quietLogger})
	q := incidents.TrendsQuery{Bucket: incidents.BucketWeek, Location: paris, Service: "api",
		From: bound.AddDate(0, 0, -7), To: bound.AddDate(0, 0, 7)}
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for wctx.Err() == nil {
			_, _ = pool.Exec(wctx, `INSERT INTO incidents (title, severity, source, status, created_at, updated_at)
				SELECT 'w' || g, 'high', 'api', 'open', $1::timestamptz, $1::timestamptz FROM generate_series(1, 10) g`,
				bound.Add(time.Hour))
		}
	}()
	defer func() { stop(); wg.Wait() }()
	for i := 0; i < 200; i++ {
		got, err := reader.Trends(ctx, q)
		require.NoError(t, err)
		require.Len(t, got, 2)
		require.Equal(t, int64(7), got[0].Opened, "read %d: the week before", i)
		require.Equal(t, int64(3), got[1].Opened%10, "read %d: the week after, %d", i, got[1].Opened)
	}
}

// Behind PgBouncer in transaction pooling (one server connection), a
// read's transaction gives the answer of a direct connection.
func TestAnalyticsThroughPgBouncer(t *testing.T) {
	s, pool := newStore(t, incidents.Options{})
	loadAnalyticsData(t, s, pool)
	ctx, cancel := context.WithTimeout(ctxT(t), 60*time.Second)
	defer cancel()
	bouncer := testutil.PgBouncer(t, pool.Config().ConnString(), testutil.PgBouncerOptions{PoolSize: 1})
	bp, err := pgxpool.New(ctx, withParam(t, withParam(t, bouncer, "default_query_exec_mode", "cache_describe"), "pool_max_conns", "4"))
	require.NoError(t, err)
	t.Cleanup(bp.Close)
	opts := incidents.Options{ExactPercentileLimit: -1, Logger: quietLogger}
	via, direct := incidents.NewStore(bp, opts), incidents.NewStore(pool, opts)
	q := incidents.TrendsQuery{Bucket: incidents.BucketWeek, Location: paris, GroupBy: incidents.GroupByService,
		From: time.Date(2026, 3, 22, 0, 0, 0, 0, paris), To: time.Date(2026, 11, 3, 0, 0, 0, 0, paris)}
	want, err := direct.Trends(ctx, q)
	require.NoError(t, err)
	for i := 0; i < 3; i++ {
		start := time.Now()
		got, err := via.Trends(ctx, q)
		require.NoError(t, err)
		require.Equal(t, want, got)
		assert.Less(t, time.Since(start), 10*time.Second, "read %d", i)
	}
}
