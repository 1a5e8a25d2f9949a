package incidents

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql migrations/adopt/*.sql
var migrationFS embed.FS

// migrationLockKey is the pg_advisory_lock key that serialises Migrate calls
// across processes ("promflow" in ASCII, as an int64).
const migrationLockKey int64 = 0x70726f6d666c6f77

type migration struct {
	version  int
	name     string
	sql      string
	checksum string // hex SHA-256 of sql
	// adopt, if set, is applied instead of this migration to an incidents
	// table that existed before promflow (migrations/adopt/).
	adopt *migration
}

func readMigrations(dir string) ([]migration, error) {
	entries, err := fs.ReadDir(migrationFS, dir)
	if err != nil {
		return nil, fmt.Errorf("incidents: read migrations: %w", err)
	}
	var ms []migration
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() {
			continue
		}
		prefix, _, ok := strings.Cut(name, "_")
		if !ok {
			return nil, fmt.Errorf("incidents: migration %q has no version prefix", name)
		}
		v, err := strconv.Atoi(prefix)
		if err != nil {
			return nil, fmt.Errorf("incidents: migration %q: %w", name, err)
		}
		b, err := migrationFS.ReadFile(dir + "/" + name)
		if err != nil {
			return nil, fmt.Errorf("incidents: read migration %q: %w", name, err)
		}
		sum := sha256.Sum256(b)
		ms = append(ms, migration{version: v, name: name, sql: string(b), checksum: hex.EncodeToString(sum[:])})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	return ms, nil
}

func loadMigrations() ([]migration, error) {
	ms, err := readMigrations("migrations")
	if err != nil {
		return nil, err
	}
	adopt, err := readMigrations("migrations/adopt")
	if err != nil {
		return nil, err
	}
	for _, a := range adopt {
		found := false
		for i := range ms {
			if ms[i].version == a.version {
				a := a
				ms[i].adopt = &a
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("incidents: adopt migration %q has no regular migration of its version", a.name)
		}
	}
	return ms, nil
}

// SchemaVersion is the schema version that [Migrate] brings a database to.
func SchemaVersion() int {
	ms, err := loadMigrations()
	if err != nil || len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].version
}

// Migrate creates or upgrades the incidents schema in the pool's database (in
// the connection's search_path, usually public). It applies the embedded,
// versioned migrations that are not yet recorded in the table
// incidents_schema_migrations, each in its own transaction.
//
// Migrate is idempotent and safe to call from several processes at once: it
// holds a session-level advisory lock while it works, so concurrent callers
// wait for each other and the later ones find nothing to do.
//
// An incidents table that exists before the first migration (the original
// platform's, or another writer's) is adopted, not replaced: its rows are
// neither rewritten nor rejected (see "Shared tables" in the package
// documentation).
//
// Each applied migration is recorded with a SHA-256 checksum of its SQL. If
// a recorded migration differs from the embedded one, Migrate applies
// nothing and returns an error wrapping [ErrMigrationChanged]. (Rows recorded
// before checksums existed are given the embedded checksum.)
//
// When the schema is current Migrate writes nothing, so it succeeds for a
// role that can only read (use [Writable] to learn whether this role can
// write). When a migration is due and the role may not change the schema,
// or the database is read-only, the error wraps [ErrReadOnly].
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("incidents: migrate: %w", classify(err))
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrationLockKey); err != nil {
		return fmt.Errorf("incidents: migrate: lock: %w", classify(err))
	}
	defer func() {
		// Unlock on a fresh context: ctx may be done. If the unlock fails the
		// connection is unusable, so drop it rather than return it locked.
		if _, err := conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrationLockKey); err != nil {
			_ = conn.Conn().Close(context.Background())
		}
	}()
	st, err := readMigrationState(ctx, conn.Conn())
	if err != nil {
		return err
	}
	if err := verifyMigrations(ms, st.applied); err != nil {
		return err
	}
	var pending []migration
	for _, m := range ms {
		if _, ok := st.applied[m.version]; !ok {
			pending = append(pending, m)
		}
	}
	if len(pending) == 0 && st.hasChecksums && !st.missingChecksums {
		return nil // current: nothing to write
	}
	if err := prepareMigrationTable(ctx, conn.Conn(), st, ms); err != nil {
		return err
	}
	for _, m := range pending {
		if m.adopt != nil && st.incidentsExists {
			m = *m.adopt
		}
		if err := applyMigration(ctx, conn.Conn(), m); err != nil {
			return err
		}
		st.incidentsExists = true
	}
	return nil
}

// migrationState is what Migrate finds before it changes anything.
type migrationState struct {
	tableExists      bool // incidents_schema_migrations
	hasChecksums     bool // ... and its checksum column
	missingChecksums bool // some recorded migration has no checksum
	incidentsExists  bool
	applied          map[int]appliedMigration
}

type appliedMigration struct {
	name     string
	checksum *string
}

// readMigrationState only reads, so it works for any role that may read.
func readMigrationState(ctx context.Context, conn *pgx.Conn) (migrationState, error) {
	st := migrationState{applied: map[int]appliedMigration{}}
	err := conn.QueryRow(ctx, `SELECT to_regclass('incidents_schema_migrations') IS NOT NULL,
		EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('incidents_schema_migrations')
		        AND attname = 'checksum' AND NOT attisdropped),
		to_regclass('incidents') IS NOT NULL`).Scan(&st.tableExists, &st.hasChecksums, &st.incidentsExists)
	if err != nil {
		return st, fmt.Errorf("incidents: migrate: %w", classify(err))
	}
	if !st.tableExists {
		return st, nil
	}
	q := "SELECT version, name, NULL::text FROM incidents_schema_migrations"
	if st.hasChecksums {
		q = "SELECT version, name, checksum FROM incidents_schema_migrations"
	}
	rows, err := conn.Query(ctx, q)
	if err != nil {
		return st, fmt.Errorf("incidents: migrate: %w", classify(err))
	}
	for rows.Next() {
		var (
			v int32
			a appliedMigration
		)
		if err := rows.Scan(&v, &a.name, &a.checksum); err != nil {
			rows.Close()
			return st, fmt.Errorf("incidents: migrate: %w", classify(err))
		}
		st.applied[int(v)] = a
		st.missingChecksums = st.missingChecksums || a.checksum == nil
	}
	if err := rows.Err(); err != nil {
		return st, fmt.Errorf("incidents: migrate: %w", classify(err))
	}
	return st, nil
}

// recordedAs returns the variant of m (itself or its adopt variant) that a
// database recorded under name.
func (m migration) recordedAs(name string) migration {
	if m.adopt != nil && name == m.adopt.name {
		return *m.adopt
	}
	return m
}

// verifyMigrations checks every recorded checksum before anything is applied.
func verifyMigrations(ms []migration, applied map[int]appliedMigration) error {
	for _, m := range ms {
		a, ok := applied[m.version]
		if !ok || a.checksum == nil {
			continue
		}
		if v := m.recordedAs(a.name); *a.checksum != v.checksum {
			return fmt.Errorf("%w: %s (version %d) was applied with checksum %.12s…, the embedded file has %.12s…", ErrMigrationChanged, v.name, v.version, *a.checksum, v.checksum)
		}
	}
	return nil
}

// prepareMigrationTable creates the bookkeeping table or brings it up to
// date, and fills checksums recorded before they existed.
func prepareMigrationTable(ctx context.Context, conn *pgx.Conn, st migrationState, ms []migration) error {
	if !st.tableExists || !st.hasChecksums {
		if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS incidents_schema_migrations (
			version    integer PRIMARY KEY,
			name       text NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now());
			ALTER TABLE incidents_schema_migrations ADD COLUMN IF NOT EXISTS checksum text`); err != nil {
			return migrateWriteError("create incidents_schema_migrations", err)
		}
	}
	for _, m := range ms {
		a, ok := st.applied[m.version]
		if !ok || a.checksum != nil {
			continue
		}
		v := m.recordedAs(a.name)
		if _, err := conn.Exec(ctx, "UPDATE incidents_schema_migrations SET checksum = $1 WHERE version = $2", v.checksum, v.version); err != nil {
			return migrateWriteError("record checksum of "+v.name, err)
		}
	}
	return nil
}

func applyMigration(ctx context.Context, conn *pgx.Conn, m migration) error {
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		// No arguments: the simple protocol runs the whole file.
		if _, err := tx.Exec(ctx, m.sql); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "INSERT INTO incidents_schema_migrations (version, name, checksum) VALUES ($1, $2, $3)", m.version, m.name, m.checksum)
		return err
	})
	if err != nil {
		return migrateWriteError("migration "+m.name, err)
	}
	return nil
}

// migrateWriteError explains a migration step that the role or the database
// does not allow, and wraps ErrReadOnly for it.
func migrateWriteError(step string, err error) error {
	err = classify(err)
	if errors.Is(err, ErrReadOnly) {
		return fmt.Errorf("incidents: %s: the schema is not current (this build needs version %d) and this role cannot change it; run Migrate once as the schema's owner: %w", step, SchemaVersion(), err)
	}
	return fmt.Errorf("incidents: %s: %w", step, err)
}

// Writable reports whether the pool's role can write incidents: the
// database is not read-only (a standby, or default_transaction_read_only)
// and the role may insert and update the incidents table and the rollup
// tables its triggers maintain. Call it after [Migrate]; a false answer is
// the cue to serve read-only ([HandlerOptions].ReadOnly).
func Writable(ctx context.Context, pool *pgxpool.Pool) (bool, error) {
	var ok bool
	err := pool.QueryRow(ctx, `SELECT NOT pg_is_in_recovery()
		AND current_setting('transaction_read_only') = 'off'
		AND has_table_privilege('incidents', 'INSERT') AND has_table_privilege('incidents', 'UPDATE')
		AND has_table_privilege('incident_rollup_service', 'INSERT') AND has_table_privilege('incident_rollup_service', 'UPDATE')
		AND has_table_privilege('incident_rollup_day', 'INSERT') AND has_table_privilege('incident_rollup_day', 'UPDATE')`).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("incidents: writable: %w", classify(err))
	}
	return ok, nil
}

// RebuildRollups recomputes the rollup tables from the incidents table. The
// triggers keep the rollups exact on every write, so this is only needed
// after loading data with the triggers disabled (for example a bulk COPY with
// session_replication_role = replica). Writers are blocked while it runs.
func (s *Store) RebuildRollups(ctx context.Context) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "SELECT incidents_rebuild_rollups()")
		return err
	})
	if err != nil {
		return fmt.Errorf("incidents: rebuild rollups: %w", classify(err))
	}
	return nil
}
