package incidents

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// migrationLockKey is the pg_advisory_lock key that serialises Migrate calls
// across processes ("promflow" in ASCII, as an int64).
const migrationLockKey int64 = 0x70726f6d666c6f77

type migration struct {
	version  int
	name     string
	sql      string
	checksum string // hex SHA-256 of sql
}

func loadMigrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, fmt.Errorf("incidents: read migrations: %w", err)
	}
	var ms []migration
	for _, e := range entries {
		name := e.Name()
		prefix, _, ok := strings.Cut(name, "_")
		if !ok {
			return nil, fmt.Errorf("incidents: migration %q has no version prefix", name)
		}
		v, err := strconv.Atoi(prefix)
		if err != nil {
			return nil, fmt.Errorf("incidents: migration %q: %w", name, err)
		}
		b, err := migrationFS.ReadFile("migrations/" + name)
		if err != nil {
			return nil, fmt.Errorf("incidents: read migration %q: %w", name, err)
		}
		sum := sha256.Sum256(b)
		ms = append(ms, migration{version: v, name: name, sql: string(b), checksum: hex.EncodeToString(sum[:])})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
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
// Each applied migration is recorded with a SHA-256 checksum of its SQL. If
// a recorded migration differs from the embedded one, Migrate applies
// nothing and returns an error wrapping [ErrMigrationChanged]. (Rows recorded
// before checksums existed are given the embedded checksum.)
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
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS incidents_schema_migrations (
		version    integer PRIMARY KEY,
		name       text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now());
		ALTER TABLE incidents_schema_migrations ADD COLUMN IF NOT EXISTS checksum text`); err != nil {
		return fmt.Errorf("incidents: migrate: %w", classify(err))
	}
	type record struct {
		Version  int32
		Checksum *string
	}
	rows, err := conn.Query(ctx, "SELECT version, checksum FROM incidents_schema_migrations")
	if err != nil {
		return fmt.Errorf("incidents: migrate: %w", classify(err))
	}
	recs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[record])
	if err != nil {
		return fmt.Errorf("incidents: migrate: %w", classify(err))
	}
	applied := make(map[int]*string, len(recs))
	for _, r := range recs {
		applied[int(r.Version)] = r.Checksum
	}
	// Verify everything before applying anything.
	for _, m := range ms {
		if sum, ok := applied[m.version]; ok && sum != nil && *sum != m.checksum {
			return fmt.Errorf("%w: %s (version %d) was applied with checksum %.12s…, the embedded file has %.12s…", ErrMigrationChanged, m.name, m.version, *sum, m.checksum)
		}
	}
	for _, m := range ms {
		if sum, ok := applied[m.version]; ok {
			if sum == nil {
				if _, err := conn.Exec(ctx, "UPDATE incidents_schema_migrations SET checksum = $1 WHERE version = $2", m.checksum, m.version); err != nil {
					return fmt.Errorf("incidents: migrate: %w", classify(err))
				}
			}
			continue
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			// No arguments: the simple protocol runs the whole file.
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO incidents_schema_migrations (version, name, checksum) VALUES ($1, $2, $3)", m.version, m.name, m.checksum)
			return err
		})
		if err != nil {
			return fmt.Errorf("incidents: migration %s: %w", m.name, classify(err))
		}
	}
	return nil
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
