package incidents_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/promflow/promflow/incidents"
	"github.com/promflow/promflow/internal/testutil"
	"github.com/promflow/promflow/promflowtest"
)

// The analytics benchmark data set: 10,000,000 incidents in 200 services
// over the 3 years before benchEnd, 70 % of them alert-backed (fingerprint
// and startsAt), with an alertname among 60 (Zipf-distributed) and a team
// label. It is loaded once with COPY into promflow_bench_analytics_<rows>
// and kept between runs, like the 1,000,000-incident set of bench_test.go
// (same fingerprint rule; PROMFLOW_BENCH_RELOAD=1 forces a reload). The
// load takes tens of minutes, so these benchmarks run only when
// PROMFLOW_BENCH_10M=1 (with -short: 100,000 incidents):
//
//	PROMFLOW_BENCH_10M=1 go test -run '^$' -bench BenchmarkAnalytics -benchtime 2s -v ./incidents/
const (
	analyticsBenchRows      = 10_000_000
	analyticsBenchShortRows = 100_000
	analyticsBenchServices  = 200
	analyticsBenchGenerator = 1
)

var analyticsBenchPoolByRows = map[int]*pgxpool.Pool{}

func analyticsBenchPool(b *testing.B) *pgxpool.Pool {
	b.Helper()
	if os.Getenv("PROMFLOW_BENCH_10M") != "1" {
		b.Skip("set PROMFLOW_BENCH_10M=1 to run the 10,000,000-incident analytics benchmarks (the first run loads the data set)")
	}
	rows := analyticsBenchRows
	if testing.Short() {
		rows = analyticsBenchShortRows
	}
	benchMu.Lock()
	defer benchMu.Unlock()
	if p := analyticsBenchPoolByRows[rows]; p != nil {
		return p
	}
	ctx := context.Background()
	base := os.Getenv("DATABASE_URL")
	if base == "" {
		base = promflowtest.DefaultDatabaseURL
	}
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		testutil.SkipOrFail(b, "PostgreSQL not reachable (%v): install the Debian package postgresql or set DATABASE_URL", err)
	}
	defer admin.Close(ctx)
	name := fmt.Sprintf("promflow_bench_analytics_%d", rows)
	want := benchFingerprint(b, rows) + fmt.Sprintf(" analytics=%d", analyticsBenchGenerator)
	cfg, err := pgxpool.ParseConfig(base)
	if err != nil {
		b.Fatal(err)
	}
	cfg.ConnConfig.Database = name
	cfg.MaxConns = 4
	exists := false
	if os.Getenv("PROMFLOW_BENCH_RELOAD") != "1" {
		if c, err := pgx.ConnectConfig(ctx, cfg.ConnConfig); err == nil {
			var have string
			_ = c.QueryRow(ctx, "SELECT fingerprint FROM promflow_bench_state").Scan(&have)
			c.Close(ctx)
			exists = have == want
		}
	}
	if !exists {
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			b.Fatal(err)
		}
		if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
			b.Fatal(err)
		}
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	if !exists {
		start := time.Now()
		if err := incidents.Migrate(ctx, pool); err != nil {
			pool.Close()
			b.Fatal(err)
		}
		if err := loadAnalyticsBenchData(ctx, pool, rows, want); err != nil {
			pool.Close()
			b.Fatal(err)
		}
		b.Logf("loaded %d incidents into %s in %v", rows, name, time.Since(start).Round(time.Second))
	}
	analyticsBenchPoolByRows[rows] = pool
	benchPools[-rows] = pool // closed by closeBenchPools
	return pool
}

func loadAnalyticsBenchData(ctx context.Context, pool *pgxpool.Pool, rows int, fingerprint string) error {
	if _, err := pool.Exec(ctx, `CREATE TABLE promflow_bench_state (fingerprint text NOT NULL)`); err != nil {
		return err
	}
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "ALTER TABLE incidents DISABLE TRIGGER USER"); err != nil {
			return err
		}
		rng := rand.New(rand.NewPCG(10, analyticsBenchGenerator))
		zipf := rand.NewZipf(rand.New(rand.NewPCG(11, 1)), 1.2, 1, 59)
		severities := []string{"critical", "warning", "info"}
		teams := []string{"core", "edge", "data", "web"}
		span := int64(3 * 365 * 24 * time.Hour)
		i := 0
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"incidents"},
			[]string{"title", "severity", "source", "status", "labels", "created_at", "updated_at", "acknowledged_at",
				"resolved_at", "fingerprint", "starts_at", "reopen_count"},
			pgx.CopyFromFunc(func() ([]any, error) {
				if i == rows {
					return nil, nil
				}
				i++
				created := benchEnd.Add(-time.Duration(rng.Int64N(span))).Truncate(time.Microsecond)
				var ack, res, start *time.Time
				var fp *string
				status := "open"
				switch p := rng.IntN(100); {
				case p < 8:
				case p < 15:
					status = "acknowledged"
				case p < 95:
					status = "resolved"
				default:
					status = "closed"
				}
				if status != "open" && (status == "acknowledged" || rng.IntN(10) != 0) {
					a := created.Add(time.Duration(math.Exp(rng.NormFloat64()+5.7) * float64(time.Second))).Truncate(time.Microsecond)
					ack = &a
				}
				if status == "resolved" || status == "closed" {
					from := created
					if ack != nil {
						from = *ack
					}
					r := from.Add(time.Duration(math.Exp(rng.NormFloat64()+8.2) * float64(time.Second))).Truncate(time.Microsecond)
					res = &r
				}
				if rng.IntN(10) < 7 {
					s := created.Add(-time.Duration(math.Exp(rng.NormFloat64()+4) * float64(time.Second))).Truncate(time.Microsecond)
					f := fmt.Sprintf("fp%d", i)
					start, fp = &s, &f
				}
				reopens := 0
				if rng.IntN(50) == 0 {
					reopens = 1
				}
				labels := fmt.Sprintf(`{"alertname":"Alert%02d","team":"%s"}`, zipf.Uint64(), teams[rng.IntN(len(teams))])
				return []any{"incident", severities[rng.IntN(3)], fmt.Sprintf("svc-%03d", rng.IntN(analyticsBenchServices)),
					status, labels, created, created, ack, res, fp, start, reopens}, nil
			}))
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "ALTER TABLE incidents ENABLE TRIGGER USER")
		return err
	})
	if err != nil {
		return err
	}
	if err := incidents.NewStore(pool, incidents.Options{}).RebuildRollups(ctx); err != nil {
		return err
	}
	for _, t := range []string{"incidents", "incident_rollup_day", "incident_rollup_service", "incident_rollup_analytics"} {
		if _, err := pool.Exec(ctx, "VACUUM ANALYZE "+t); err != nil {
			return err
		}
	}
	_, err = pool.Exec(ctx, "INSERT INTO promflow_bench_state VALUES ($1)", fingerprint)
	return err
}

// naiveBreakdownAllTime is the plain SQL of the all-time breakdown by
// service: every measure, percentile_cont over the whole table.
const naiveBreakdownAllTime = `SELECT svc, count(*), count(a), avg(a), count(r), avg(r), count(d), avg(d),
	count(*) FILTER (WHERE a <= 300), count(*) FILTER (WHERE r IS NOT NULL AND a IS NULL), count(*) FILTER (WHERE reopen_count > 0),
	percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY a), percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY r)
	FROM (SELECT source AS svc, reopen_count, extract(epoch FROM acknowledged_at - created_at)::float8 AS a,
	             extract(epoch FROM resolved_at - created_at)::float8 AS r,
	             greatest(extract(epoch FROM created_at - starts_at)::float8, 0) AS d FROM incidents) w
	GROUP BY svc`

func BenchmarkAnalyticsBreakdownServiceAllTime(b *testing.B) {
	pool := analyticsBenchPool(b)
	s := incidents.NewStore(pool, incidents.Options{})
	q := incidents.BreakdownQuery{GroupBy: incidents.GroupByService, Limit: 1000}
	b.Run("promflow", func(b *testing.B) {
		warm(b, func() error { _, err := s.Breakdown(context.Background(), q); return err })
		for b.Loop() {
			p, err := s.Breakdown(context.Background(), q)
			if err != nil || len(p.Rows) != analyticsBenchServices {
				b.Fatal(len(p.Rows), err)
			}
		}
	})
	b.Run("naive", func(b *testing.B) { runNaive(b, pool, naiveBreakdownAllTime) })
}
