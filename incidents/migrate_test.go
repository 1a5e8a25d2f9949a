package incidents_test

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/incidents"
	"github.com/promflow/promflow/internal/testutil"
)

func TestMigrateTwiceAndConcurrently(t *testing.T) {
	pool := testutil.Postgres(t)
	ctx := ctxT(t)

	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs[i] = incidents.Migrate(ctx, pool)
		}(i)
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	require.NoError(t, incidents.Migrate(ctx, pool), "second run is a no-op")

	var versions []int32
	rows, err := pool.Query(ctx, "SELECT version FROM incidents_schema_migrations ORDER BY version")
	require.NoError(t, err)
	for rows.Next() {
		var v int32
		require.NoError(t, rows.Scan(&v))
		versions = append(versions, v)
	}
	require.NoError(t, rows.Err())
	require.NotEmpty(t, versions)
	assert.Equal(t, int32(incidents.SchemaVersion()), versions[len(versions)-1])
	for i, v := range versions {
		assert.Equal(t, int32(i+1), v, "each migration applied exactly once")
	}
	var triggers int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM pg_trigger WHERE tgrelid = 'incidents'::regclass AND NOT tgisinternal`).Scan(&triggers))
	assert.Equal(t, 5, triggers)
}

func TestConstraints(t *testing.T) {
	_, pool := newStore(t, incidents.Options{})
	ctx := ctxT(t)
	for _, q := range []string{
		`INSERT INTO incidents (title, source, status) VALUES ('x', 'a', 'bogus')`,
		`INSERT INTO incidents (title, source, status, created_at, acknowledged_at) VALUES ('x', 'a', 'acknowledged', now(), now() - interval '1 s')`,
		`INSERT INTO incidents (title, source, status, created_at, resolved_at) VALUES ('x', 'a', 'resolved', now(), now() - interval '1 s')`,
		`INSERT INTO incidents (title, source, status) VALUES ('x', 'a', 'acknowledged')`,
		`INSERT INTO incidents (title, source, status) VALUES ('x', 'a', 'resolved')`,
		`INSERT INTO incidents (title, source, status, resolved_at) VALUES ('x', 'a', 'open', now())`,
	} {
		_, err := pool.Exec(ctx, q)
		assert.Error(t, err, q)
	}
}
