package incidents_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/incidents"
	"github.com/promflow/promflow/promflowtest"
)

// quietLogger drops the expected warnings (outages, reconnects) of tests.
var quietLogger = slog.New(slog.DiscardHandler)

// clock is a settable clock for Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// newStore returns a migrated store on a database of the test's own.
func newStore(t testing.TB, opts incidents.Options) (*incidents.Store, *pgxpool.Pool) {
	t.Helper()
	pool := testPool(t, promflowtest.DatabaseURL(t))
	require.NoError(t, incidents.Migrate(ctxT(t), pool))
	if opts.Logger == nil {
		opts.Logger = quietLogger
	}
	return incidents.NewStore(pool, opts), pool
}

// testPool opens a pool on dsn, closed at cleanup. Commits do not wait for
// the WAL flush (synchronous_commit=off): on a shared, busy machine fsync
// latency would dominate the tests, and durability is not what they check.
func testPool(t testing.TB, dsn string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(dsn)
	require.NoError(t, err)
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "off"
	cfg.MaxConns = 8
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}
