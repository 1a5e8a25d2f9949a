package incidents_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"strings"
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
			exists = have == want && upToDate(b, ctx, cfg.ConnConfig)
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

// loadAnalyticsBenchData generates the data set inside PostgreSQL (INSERT
// ... SELECT over generate_series, 1,000,000 rows per statement) with the
// triggers off and the indexes and unique constraints dropped, rebuilds
// those (sorted builds are far cheaper than 10,000,000 random insertions),
// then RebuildRollups.
func loadAnalyticsBenchData(ctx context.Context, pool *pgxpool.Pool, rows int, fingerprint string) error {
	if _, err := pool.Exec(ctx, `CREATE TABLE promflow_bench_state (fingerprint text NOT NULL)`); err != nil {
		return err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	var restore []string
	r, err := conn.Query(ctx, `SELECT 'ALTER TABLE incidents ADD CONSTRAINT ' || quote_ident(conname) || ' ' || pg_get_constraintdef(oid),
			'ALTER TABLE incidents DROP CONSTRAINT ' || quote_ident(conname)
		FROM pg_constraint WHERE conrelid = 'incidents'::regclass AND contype IN ('p', 'u')
		UNION ALL
		SELECT indexdef, 'DROP INDEX ' || quote_ident(indexname) FROM pg_indexes
		WHERE schemaname = current_schema() AND tablename = 'incidents'
		  AND indexname NOT IN (SELECT conindid::regclass::text FROM pg_constraint WHERE conrelid = 'incidents'::regclass)`)
	if err != nil {
		return err
	}
	var drops []string
	for r.Next() {
		var add, drop string
		if err := r.Scan(&add, &drop); err != nil {
			r.Close()
			return err
		}
		restore, drops = append(restore, add), append(drops, drop)
	}
	r.Close()
	if err := r.Err(); err != nil {
		return err
	}
	setup := append([]string{"SET maintenance_work_mem = '1GB'", "SET work_mem = '256MB'", "SET synchronous_commit = off", "SET jit = off",
		"ALTER TABLE incidents DISABLE TRIGGER USER", "SELECT setseed(0.1)"}, drops...)
	for _, q := range setup {
		if _, err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	const chunk = 1_000_000
	for lo := 1; lo <= rows; lo += chunk {
		hi := min(rows, lo+chunk-1)
		if _, err := conn.Exec(ctx, analyticsBenchInsert, lo, hi, benchEnd, analyticsBenchServices); err != nil {
			return err
		}
	}
	for _, q := range append(restore, "ALTER TABLE incidents ENABLE TRIGGER USER") {
		if _, err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	if _, err := conn.Exec(ctx, "SELECT incidents_rebuild_rollups()"); err != nil {
		return err
	}
	for _, t := range []string{"incidents", "incident_rollup_day", "incident_rollup_service", "incident_rollup_analytics"} {
		if _, err := conn.Exec(ctx, "VACUUM ANALYZE "+t); err != nil {
			return err
		}
	}
	_, err = conn.Exec(ctx, "INSERT INTO promflow_bench_state VALUES ($1)", fingerprint)
	return err
}

// analyticsBenchInsert generates incidents $1..$2: created uniformly over
// the 3 years before $3 in $4 services; status 8 % open, 7 % acknowledged,
// 80 % resolved, 5 % closed; times to acknowledge and resolve log-normal
// (medians about 5 minutes and 1 hour); 70 % alert-backed with a log-normal
// detection delay (median about 1 minute); 2 % reopened once; alertname
// log-uniform among 60 names; a team label.
const analyticsBenchInsert = `INSERT INTO incidents (title, severity, source, status, labels, created_at, updated_at,
	acknowledged_at, resolved_at, fingerprint, starts_at, reopen_count)
SELECT 'incident ' || g, (ARRAY['critical', 'warning', 'info'])[1 + sev], 'svc-' || lpad(svc::text, 3, '0'), status,
	jsonb_build_object('alertname', 'Alert' || lpad((floor(power(60, an)) - 1)::int::text, 2, '0'),
	                   'team', (ARRAY['core', 'edge', 'data', 'web'])[1 + team]),
	created, created, ack,
	CASE WHEN status IN ('resolved', 'closed') THEN coalesce(ack, created) + make_interval(secs => rd) END,
	CASE WHEN alert < 0.7 THEN 'fp' || g END,
	CASE WHEN alert < 0.7 THEN created - make_interval(secs => sd) END,
	CASE WHEN ro < 0.02 THEN 1 ELSE 0 END
FROM (SELECT *, CASE WHEN status <> 'open' AND (status = 'acknowledged' OR q >= 0.1)
                     THEN created + make_interval(secs => ad) END AS ack
      FROM (SELECT g, date_trunc('milliseconds', $3::timestamptz - make_interval(secs => random() * 3 * 365 * 86400)) AS created,
                   CASE WHEN p < 0.08 THEN 'open' WHEN p < 0.15 THEN 'acknowledged' WHEN p < 0.95 THEN 'resolved' ELSE 'closed' END AS status,
                   q, ad, rd, sd, alert, ro, sev, svc, team, an
            FROM (SELECT g, random() AS p, random() AS q,
                         exp(sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()) + 5.7) AS ad,
                         exp(sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()) + 8.2) AS rd,
                         exp(sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()) + 4) AS sd,
                         random() AS alert, random() AS ro, floor(random() * 3)::int AS sev,
                         floor(random() * $4)::int AS svc, floor(random() * 4)::int AS team, random() AS an
                  FROM generate_series($1::int, $2::int) g) x) y) z`

// The plain SQL of each benchmark: date_trunc in the zone and
// percentile_cont straight on the base table, every measure the package
// answers (plainMeasures and plainBase of analytics_test.go). The same
// statements check promflow's answers before timing.
var (
	naiveTrendSQL = `SELECT svc, date_trunc('week', created_at AT TIME ZONE $1) AT TIME ZONE $1, ` +
		strings.NewReplacer("$4", "$3", "$5", "$4").Replace(plainMeasures) +
		` FROM (` + plainBase + `) b WHERE created_at >= $2 AND created_at < $5 GROUP BY 1, 2`
	naiveWindowSQL = `SELECT severity, now(), ` + strings.NewReplacer("$4", "$2", "$5", "$3").Replace(plainMeasures) +
		` FROM (` + plainBase + `) b WHERE created_at >= $1 AND created_at < $4 GROUP BY 1`
	naiveAllTimeSQL = `SELECT svc, now(), ` + strings.NewReplacer("$4", "$1", "$5", "$2").Replace(plainMeasures) +
		` FROM (` + plainBase + `) b GROUP BY 1`
)

func plainRows(b *testing.B, pool *pgxpool.Pool, sql string, args ...any) []plainPoint {
	b.Helper()
	rows, err := pool.Query(context.Background(), sql, args...)
	if err != nil {
		b.Fatal(err)
	}
	return scanPlain(b, rows)
}

var analyticsBenchTargets = incidents.Targets{AckWithin: 5 * time.Minute, ResolveWithin: time.Hour}

// A 90-day weekly trend per service in Europe/Paris, with p50/p90.
func BenchmarkAnalyticsTrendWeekly90dPerService(b *testing.B) {
	pool := analyticsBenchPool(b)
	s := incidents.NewStore(pool, incidents.Options{})
	q := incidents.TrendsQuery{Bucket: incidents.BucketWeek, Location: paris, From: benchEnd.AddDate(0, 0, -90), To: benchEnd,
		GroupBy: incidents.GroupByService, Targets: analyticsBenchTargets}
	got, err := s.Trends(context.Background(), q)
	if err != nil || len(got) == 0 {
		b.Fatal(len(got), err)
	}
	from, to := got[0].BucketStart, got[len(got)-1].BucketStart.AddDate(0, 0, 7)
	args := []any{"Europe/Paris", from, 300.0, 3600.0, to}
	want := plainRows(b, pool, naiveTrendSQL, args...)
	checkTrend(b, got, want, func(p incidents.TrendPoint) string { return p.Service }, sumOpened(got) > 10000, "weekly trend")
	b.Logf("%d points (%d services x %d weeks) over %d incidents; %s", len(got), analyticsBenchServices,
		len(got)/analyticsBenchServices, sumOpened(got), worstPercentileError(got, want))
	b.Run("promflow", func(b *testing.B) {
		for b.Loop() {
			if out, err := s.Trends(context.Background(), q); err != nil || len(out) != len(got) {
				b.Fatal(len(out), err)
			}
		}
	})
	b.Run("naive", func(b *testing.B) { runNaive(b, pool, naiveTrendSQL, args...) })
}

func sumOpened(ps []incidents.TrendPoint) int64 {
	var n int64
	for _, p := range ps {
		n += p.Opened
	}
	return n
}

// worstPercentileError reports the largest relative error of the trend's
// percentiles against percentile_cont.
func worstPercentileError(got []incidents.TrendPoint, want []plainPoint) string {
	byKey := map[string]plainPoint{}
	for _, p := range want {
		byKey[p.key+"|"+p.bucket.UTC().Format(time.RFC3339)] = p
	}
	worst := 0.0
	for _, g := range got {
		p, ok := byKey[g.Service+"|"+g.BucketStart.UTC().Format(time.RFC3339)]
		if !ok {
			continue
		}
		for _, pair := range [][2]*float64{{g.MTTAP50, p.aP50}, {g.MTTAP90, p.aP90}, {g.MTTRP50, p.rP50}, {g.MTTRP90, p.rP90},
			{g.MTTDP50, p.dP50}, {g.MTTDP90, p.dP90}} {
			if pair[0] != nil && pair[1] != nil && *pair[1] > 1 {
				worst = max(worst, math.Abs(*pair[0]-*pair[1]) / *pair[1])
			}
		}
	}
	return fmt.Sprintf("worst relative percentile error %.2f%% (bound %.2f%%)", 100*worst, 100*incidents.PercentileRelativeError)
}

// A breakdown by severity over 30 days whose edges fall inside days.
func BenchmarkAnalyticsBreakdownSeverity30d(b *testing.B) {
	pool := analyticsBenchPool(b)
	s := incidents.NewStore(pool, incidents.Options{})
	q := incidents.BreakdownQuery{GroupBy: incidents.GroupBySeverity, From: benchWindow.From, To: benchWindow.To, Targets: analyticsBenchTargets}
	args := []any{q.From, 300.0, 3600.0, q.To}
	checkBreakdown(b, s, q, plainRows(b, pool, naiveWindowSQL, args...))
	b.Run("promflow", func(b *testing.B) {
		for b.Loop() {
			if p, err := s.Breakdown(context.Background(), q); err != nil || len(p.Rows) != 3 {
				b.Fatal(len(p.Rows), err)
			}
		}
	})
	b.Run("naive", func(b *testing.B) { runNaive(b, pool, naiveWindowSQL, args...) })
}

func checkBreakdown(b *testing.B, s *incidents.Store, q incidents.BreakdownQuery, want []plainPoint) {
	b.Helper()
	page, err := s.Breakdown(context.Background(), q)
	if err != nil {
		b.Fatal(err)
	}
	if len(page.Rows) != len(want) {
		b.Fatalf("%d groups, plain SQL has %d", len(page.Rows), len(want))
	}
	byKey := map[string]plainPoint{}
	for _, p := range want {
		byKey[p.key] = p
	}
	var n int64
	for _, r := range page.Rows {
		n += r.Total
	}
	for _, r := range page.Rows {
		// Above the default ExactPercentileLimit the rollups answer.
		checkMeasures(b, byKey[r.Key], r.Total, r.Measures, n > 10000, "breakdown "+r.Key)
	}
	b.Logf("%d groups over %d incidents equal to plain SQL (percentiles within %.2f%%)", len(page.Rows), n, 100*incidents.PercentileRelativeError)
}

func BenchmarkAnalyticsBreakdownServiceAllTime(b *testing.B) {
	pool := analyticsBenchPool(b)
	s := incidents.NewStore(pool, incidents.Options{})
	q := incidents.BreakdownQuery{GroupBy: incidents.GroupByService, Limit: 1000, Targets: analyticsBenchTargets}
	args := []any{300.0, 3600.0}
	checkBreakdown(b, s, q, plainRows(b, pool, naiveAllTimeSQL, args...))
	b.Run("promflow", func(b *testing.B) {
		for b.Loop() {
			p, err := s.Breakdown(context.Background(), q)
			if err != nil || len(p.Rows) != analyticsBenchServices {
				b.Fatal(len(p.Rows), err)
			}
		}
	})
	// A new store each op: nothing kept from an earlier read.
	b.Run("promflow_cold", func(b *testing.B) {
		for b.Loop() {
			p, err := incidents.NewStore(pool, incidents.Options{}).Breakdown(context.Background(), q)
			if err != nil || len(p.Rows) != analyticsBenchServices {
				b.Fatal(len(p.Rows), err)
			}
		}
	})
	// One incident written before each op (untimed): its service's and
	// severity's rows are read again.
	b.Run("promflow_after_write", func(b *testing.B) {
		ctx := context.Background()
		var id string
		if err := pool.QueryRow(ctx, `SELECT id::text FROM incidents WHERE acknowledged_at IS NOT NULL AND status = 'resolved' LIMIT 1`).Scan(&id); err != nil {
			b.Fatal(err)
		}
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			if _, err := pool.Exec(ctx, `UPDATE incidents SET acknowledged_at = acknowledged_at + $1 * interval '1 ms' WHERE id = $2`, 1-2*(i%2), id); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			p, err := s.Breakdown(ctx, q)
			if err != nil || len(p.Rows) != analyticsBenchServices {
				b.Fatal(len(p.Rows), err)
			}
		}
	})
	b.Run("naive", func(b *testing.B) { runNaive(b, pool, naiveAllTimeSQL, args...) })
}
