package incidents_test

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/incidents"
	"github.com/promflow/promflow/promflowtest"
)

func TestMigrateTwiceAndConcurrently(t *testing.T) {
	pool := promflowtest.Database(t)
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
	assert.Equal(t, 11, triggers) // 0006 adds the reopen counter and the analytics rollup's four
}

func TestConstraints(t *testing.T) {
	_, pool := newStore(t, incidents.Options{})
	ctx := ctxT(t)
	for _, q := range []string{
		`INSERT INTO incidents (title, source, status) VALUES ('x', 'a', 'bogus')`,
		`INSERT INTO incidents (title, source, status, created_at, acknowledged_at) VALUES ('x', 'a', 'acknowledged', now(), now() - interval '1 s')`,
		`INSERT INTO incidents (title, source, status, created_at, resolved_at) VALUES ('x', 'a', 'resolved', now(), now() - interval '1 s')`,
		`INSERT INTO incidents (title, source, fingerprint) VALUES ('x', 'a', 'fp')`,
	} {
		_, err := pool.Exec(ctx, q)
		assert.Error(t, err, q)
	}
	// Status and timestamps may disagree as the original platform writes
	// them (version 4); the rollups count such rows by their rules.
	for _, q := range []string{
		`INSERT INTO incidents (title, source, status) VALUES ('x', 'a', 'acknowledged')`,
		`INSERT INTO incidents (title, source, status) VALUES ('x', 'a', 'resolved')`,
		`INSERT INTO incidents (title, source, status, resolved_at) VALUES ('x', 'a', 'open', now())`,
		`INSERT INTO incidents (title, status) VALUES ('no source', 'open')`,
	} {
		_, err := pool.Exec(ctx, q)
		assert.NoError(t, err, q)
	}
	requireRollupsExact(t, pool)
}

// The original platform's table, with its rows, is adopted: columns added,
// rollups built from the existing rows.
func TestMigrateExistingTable(t *testing.T) {
	pool := promflowtest.Database(t)
	ctx := ctxT(t)
	_, err := pool.Exec(ctx, `CREATE TABLE incidents (
		id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
		title varchar(255) NOT NULL, severity varchar(50), source varchar(100),
		description text, status varchar(50) DEFAULT 'open', labels jsonb DEFAULT '{}',
		assigned_to varchar(100), created_at timestamptz DEFAULT now(), updated_at timestamptz DEFAULT now(),
		acknowledged_at timestamptz, resolved_at timestamptz);
		INSERT INTO incidents (title, severity, source, status, created_at, acknowledged_at, resolved_at) VALUES
		('a', 'critical', 'prometheus', 'open', now() - interval '2 h', NULL, NULL),
		('b', 'warning', 'prometheus', 'resolved', now() - interval '2 h', now() - interval '1 h', now()),
		('c', 'info', 'node-exporter', 'acknowledged', now() - interval '1 h', now(), NULL),
		('d', NULL, NULL, 'open', now() - interval '3 h', NULL, NULL)`)
	require.NoError(t, err)
	require.NoError(t, incidents.Migrate(ctx, pool))
	requireRollupsExact(t, pool)
	s := incidents.NewStore(pool, incidents.Options{})
	counts, err := s.ByService(ctx)
	require.NoError(t, err)
	assert.Equal(t, []incidents.ServiceCounts{
		{Service: "prometheus", Total: 2, Open: 1, Resolved: 1},
		{Service: "node-exporter", Total: 1, Acknowledged: 1},
		{Service: "unknown", Total: 1, Open: 1},
	}, counts)
	page, err := s.Details(ctx, incidents.DetailsQuery{})
	require.NoError(t, err)
	assert.Len(t, page.Items, 4)
}

// TestMigrateRefusesChangedMigration: a database whose recorded migration
// differs from the embedded one (someone edited an applied migration) is
// refused before anything is applied; a row recorded before checksums
// existed is given the embedded checksum.
func TestMigrateRefusesChangedMigration(t *testing.T) {
	pool := promflowtest.Database(t)
	ctx := ctxT(t)
	require.NoError(t, incidents.Migrate(ctx, pool))

	_, err := pool.Exec(ctx, "UPDATE incidents_schema_migrations SET checksum = NULL WHERE version = 1")
	require.NoError(t, err)
	require.NoError(t, incidents.Migrate(ctx, pool))
	var sum *string
	require.NoError(t, pool.QueryRow(ctx, "SELECT checksum FROM incidents_schema_migrations WHERE version = 1").Scan(&sum))
	require.NotNil(t, sum)
	assert.Len(t, *sum, 64)

	_, err = pool.Exec(ctx, "UPDATE incidents_schema_migrations SET checksum = repeat('0', 64) WHERE version = 1")
	require.NoError(t, err)
	err = incidents.Migrate(ctx, pool)
	require.ErrorIs(t, err, incidents.ErrMigrationChanged)
	assert.Contains(t, err.Error(), "0001")
}
