package incidents_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/incidents"
)

// analyticsRollupDiff recomputes incident_rollup_analytics with plain
// GROUP BY, restating the rules (service "unknown" for NULL, resolution only
// when resolved or closed, detection clamped at zero), and returns the rows
// that differ.
func analyticsRollupDiff(ctx context.Context, pool *pgxpool.Pool) ([]string, error) {
	const base = `base AS (
		SELECT coalesce(source, 'unknown') AS svc, severity, created_at,
		       extract(epoch FROM acknowledged_at - created_at) AS a,
		       extract(epoch FROM CASE WHEN status IN ('resolved', 'closed') THEN resolved_at END - created_at) AS r,
		       CASE WHEN starts_at IS NULL THEN NULL WHEN created_at < starts_at THEN 0
		            ELSE extract(epoch FROM created_at - starts_at) END AS d,
		       CASE WHEN starts_at IS NULL OR status NOT IN ('resolved', 'closed') OR resolved_at IS NULL THEN NULL
		            WHEN resolved_at < starts_at THEN 0 ELSE extract(epoch FROM resolved_at - starts_at) END AS rfs,
		       reopen_count
		FROM incidents),
	keyed AS (
		SELECT g.grain::smallint AS grain, k.dim::smallint AS dim, k.key,
		       CASE g.grain WHEN 0 THEN 0
		            WHEN 1 THEN (date_trunc('day', created_at AT TIME ZONE 'UTC')::date - DATE '1970-01-01')
		            WHEN 2 THEN (date_trunc('week', created_at AT TIME ZONE 'UTC')::date - DATE '1970-01-01')
		            ELSE (date_trunc('month', created_at AT TIME ZONE 'UTC')::date - DATE '1970-01-01') END AS period,
		       a, r, d, rfs, reopen_count
		FROM base CROSS JOIN generate_series(0, 3) g(grain)
		CROSS JOIN LATERAL (VALUES (0, svc), (1, severity)) k(dim, key))`
	checks := map[string]string{
		"analytics counters": `WITH ` + base + `,
			want AS (SELECT grain, dim, period, key, count(*)::bigint, count(a)::bigint, coalesce(sum(a), 0),
				count(r)::bigint, coalesce(sum(r), 0), count(d)::bigint, coalesce(sum(d), 0), count(rfs)::bigint, coalesce(sum(rfs), 0),
				count(*) FILTER (WHERE r IS NOT NULL AND a IS NULL)::bigint, count(*) FILTER (WHERE reopen_count > 0)::bigint,
				count(*) FILTER (WHERE a <= 60)::bigint, count(*) FILTER (WHERE a <= 300)::bigint,
				count(*) FILTER (WHERE a <= 900)::bigint, count(*) FILTER (WHERE a <= 3600)::bigint,
				count(*) FILTER (WHERE r <= 1800)::bigint, count(*) FILTER (WHERE r <= 3600)::bigint,
				count(*) FILTER (WHERE r <= 14400)::bigint, count(*) FILTER (WHERE r <= 86400)::bigint
				FROM keyed GROUP BY 1, 2, 3, 4),
			got AS (SELECT grain, dim, period, key, total, ack_n, ack_sum, res_n, res_sum, det_n, det_sum, rfs_n, rfs_sum,
				auto_resolved, reopened, ack_le_60, ack_le_300, ack_le_900, ack_le_3600,
				res_le_1800, res_le_3600, res_le_14400, res_le_86400
				FROM incident_rollup_analytics WHERE total <> 0)
			(SELECT 'missing', * FROM (SELECT * FROM want EXCEPT SELECT * FROM got) x)
			UNION ALL (SELECT 'extra', * FROM (SELECT * FROM got EXCEPT SELECT * FROM want) y)`,
		"analytics histograms": `WITH ` + base + `,
			want AS (SELECT grain, dim, period, key, 'a' h, incidents_duration_bucket(a::float8) b, count(*)::integer n FROM keyed WHERE a IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6
				UNION ALL SELECT grain, dim, period, key, 'r', incidents_duration_bucket(r::float8), count(*)::integer FROM keyed WHERE r IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6
				UNION ALL SELECT grain, dim, period, key, 'd', incidents_duration_bucket(d::float8), count(*)::integer FROM keyed WHERE d IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6),
			got AS (SELECT grain, dim, period, key, v.h, i b, incidents_hist_get(v.x, i) n
				FROM incident_rollup_analytics, generate_series(0, 242) i,
				     LATERAL (VALUES ('a', ack_hist), ('r', res_hist), ('d', det_hist)) v(h, x)
				WHERE incidents_hist_get(v.x, i) <> 0)
			(SELECT 'missing', * FROM (SELECT * FROM want EXCEPT SELECT * FROM got) x)
			UNION ALL (SELECT 'extra', * FROM (SELECT * FROM got EXCEPT SELECT * FROM want) y)`,
		"analytics empty rows are zero": `SELECT 'nonzero', grain, dim, period, key FROM incident_rollup_analytics
			WHERE total = 0 AND (ack_n, res_n, det_n, rfs_n, auto_resolved, reopened, ack_sum, res_sum, det_sum, rfs_sum)
			      <> (0, 0, 0, 0, 0, 0, 0, 0, 0, 0)`,
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

var paris = mustLocation("Europe/Paris")

func mustLocation(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

// loadAnalyticsData writes a data set with plain SQL and the store's
// lifecycle: incidents around the DST changes of Europe/Paris (last Sundays
// of March and October 2026) and around local midnights, alert-backed and
// not, never acknowledged, reopened (by promflow and by plain SQL), deleted,
// with and without a team label, and a NULL source.
func loadAnalyticsData(t *testing.T, s *incidents.Store, pool *pgxpool.Pool) {
	t.Helper()
	ctx := ctxT(t)
	rng := rand.New(rand.NewPCG(14, 14))
	type row struct {
		created                    time.Time
		ack, res, start            *time.Time
		status, svc, sev, team, an string
	}
	starts := []time.Time{
		time.Date(2026, 3, 24, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 10, 19, 0, 0, 0, 0, time.UTC),
	}
	var rows []row
	for i := 0; i < 1200; i++ {
		base := starts[i%2]
		// Half the incidents within two hours of a UTC 22:00/23:00 (local
		// midnight in summer/winter), the rest anywhere in 14 days.
		var created time.Time
		if i%4 < 2 {
			created = base.Add(time.Duration(rng.IntN(14))*24*time.Hour + 21*time.Hour + time.Duration(rng.Int64N(int64(3*time.Hour))))
		} else {
			created = base.Add(time.Duration(rng.Int64N(int64(14 * 24 * time.Hour))))
		}
		created = created.Truncate(time.Microsecond)
		r := row{created: created, status: "open", svc: fmt.Sprintf("svc-%d", rng.IntN(4)),
			sev: []string{"critical", "warning", "info"}[rng.IntN(3)], team: []string{"", "core", "edge"}[rng.IntN(3)],
			an: []string{"HighCPU", "DiskFull", "Flapping", "Latency"}[rng.IntN(4)]}
		if rng.IntN(3) > 0 {
			st := created.Add(-time.Duration(rng.Int64N(int64(10 * time.Minute)))).Truncate(time.Microsecond)
			if rng.IntN(20) == 0 {
				st = created.Add(time.Second) // clock skew: detection counts 0
			}
			r.start = &st
		}
		p := rng.IntN(10)
		if p >= 2 { // acknowledged
			a := created.Add(time.Duration(math.Exp(rng.NormFloat64()+5.5) * float64(time.Second))).Truncate(time.Microsecond)
			if p == 2 {
				a = created.Add(5 * time.Minute) // exactly on the target
			}
			r.ack, r.status = &a, "acknowledged"
		}
		if p >= 4 || p == 1 { // resolved (p == 1: never acknowledged, auto-resolved)
			from := created
			if r.ack != nil {
				from = *r.ack
			}
			res := from.Add(time.Duration(math.Exp(rng.NormFloat64()+7.5) * float64(time.Second))).Truncate(time.Microsecond)
			r.res, r.status = &res, "resolved"
			if p == 9 {
				r.status = "closed"
			}
		}
		if i%7 == 0 {
			r.svc = "" // NULL source: service "unknown"
		}
		rows = append(rows, r)
	}
	_, err := pool.CopyFrom(ctx, pgx.Identifier{"incidents"},
		[]string{"title", "severity", "source", "status", "labels", "created_at", "updated_at", "acknowledged_at", "resolved_at", "fingerprint", "starts_at"},
		pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) {
			r := rows[i]
			labels := map[string]string{"alertname": r.an}
			if r.team != "" {
				labels["team"] = r.team
			}
			var src, fp any
			if r.svc != "" {
				src = r.svc
			}
			if r.start != nil {
				fp = fmt.Sprintf("fp-%d", i)
			}
			return []any{fmt.Sprintf("i%d", i), r.sev, src, r.status, labels, r.created, r.created, r.ack, r.res, fp, r.start}, nil
		}))
	require.NoError(t, err)
	// Reopen some through the store (clears resolved_at, keeps the first
	// acknowledgement), some by plain SQL as the original platform does
	// (keeps resolved_at), then resolve a part of them again.
	ids := func(q string) []string {
		rs, err := pool.Query(ctx, q)
		require.NoError(t, err)
		out, err := pgx.CollectRows(rs, pgx.RowTo[string])
		require.NoError(t, err)
		return out
	}
	for _, id := range ids(`SELECT id::text FROM incidents WHERE status = 'resolved' ORDER BY created_at LIMIT 60`) {
		_, err := s.Reopen(ctx, id)
		require.NoError(t, err)
	}
	_, err = pool.Exec(ctx, `UPDATE incidents SET status = 'open' WHERE id IN
		(SELECT id FROM incidents WHERE status = 'closed' ORDER BY created_at LIMIT 30)`)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `UPDATE incidents SET status = 'resolved', resolved_at = created_at + interval '3 hours'
		WHERE reopen_count > 0 AND status = 'open' AND created_at < '2026-04-01'`)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `DELETE FROM incidents WHERE id IN (SELECT id FROM incidents ORDER BY md5(id::text) LIMIT 40)`)
	require.NoError(t, err)
	var reopened int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM incidents WHERE reopen_count > 0`).Scan(&reopened))
	require.Greater(t, reopened, 50, "the data set has reopened incidents")
}

func TestAnalyticsRollupsExact(t *testing.T) {
	s, pool := newStore(t, incidents.Options{})
	loadAnalyticsData(t, s, pool)
	requireRollupsExact(t, pool)
	require.NoError(t, s.RebuildRollups(ctxT(t)))
	requireRollupsExact(t, pool)
}

// plainTrend is the trend computed the plain way: date_trunc in the zone,
// percentile_cont, straight on the base table.
type plainPoint struct {
	key                                string
	bucket                             time.Time
	n, ackN, resN, detN, auto, reop    int64
	ackIn, resIn                       int64
	mtta, mttr, mttd, rfs              *float64
	aP50, aP90, rP50, rP90, dP50, dP90 *float64
}

const plainMeasures = `count(*), count(a), count(r), count(d),
	count(*) FILTER (WHERE r IS NOT NULL AND a IS NULL), count(*) FILTER (WHERE reopen_count > 0),
	count(*) FILTER (WHERE a <= $4), count(*) FILTER (WHERE r <= $5),
	avg(a)::float8, avg(r)::float8, avg(d)::float8, avg(rfs)::float8,
	percentile_cont(0.5) WITHIN GROUP (ORDER BY a), percentile_cont(0.9) WITHIN GROUP (ORDER BY a),
	percentile_cont(0.5) WITHIN GROUP (ORDER BY r), percentile_cont(0.9) WITHIN GROUP (ORDER BY r),
	percentile_cont(0.5) WITHIN GROUP (ORDER BY d), percentile_cont(0.9) WITHIN GROUP (ORDER BY d)`

const plainBase = `SELECT coalesce(source, 'unknown') AS svc, severity, labels, created_at,
	extract(epoch FROM acknowledged_at - created_at)::float8 AS a,
	extract(epoch FROM CASE WHEN status IN ('resolved', 'closed') THEN resolved_at END - created_at)::float8 AS r,
	CASE WHEN starts_at IS NULL THEN NULL WHEN created_at < starts_at THEN 0
	     ELSE extract(epoch FROM created_at - starts_at)::float8 END AS d,
	CASE WHEN starts_at IS NULL OR status NOT IN ('resolved', 'closed') OR resolved_at IS NULL THEN NULL
	     WHEN resolved_at < starts_at THEN 0 ELSE extract(epoch FROM resolved_at - starts_at)::float8 END AS rfs,
	reopen_count
	FROM incidents`

func scanPlain(t testing.TB, rows pgx.Rows) []plainPoint {
	t.Helper()
	var out []plainPoint
	for rows.Next() {
		var p plainPoint
		require.NoError(t, rows.Scan(&p.key, &p.bucket, &p.n, &p.ackN, &p.resN, &p.detN, &p.auto, &p.reop, &p.ackIn, &p.resIn,
			&p.mtta, &p.mttr, &p.mttd, &p.rfs, &p.aP50, &p.aP90, &p.rP50, &p.rP90, &p.dP50, &p.dP90))
		out = append(out, p)
	}
	require.NoError(t, rows.Err())
	return out
}

// plainTrend groups by the key expression (constant SQL) and the bucket.
func plainTrend(t testing.TB, pool *pgxpool.Pool, keyExpr, unit string, tz *time.Location, from, to time.Time, targets incidents.Targets) []plainPoint {
	t.Helper()
	rows, err := pool.Query(ctxT(t), `SELECT `+keyExpr+`, date_trunc($1, created_at AT TIME ZONE $2) AT TIME ZONE $2, `+plainMeasures+`
		FROM (`+plainBase+`) b WHERE created_at >= $3 AND created_at < $6 GROUP BY 1, 2 ORDER BY 1, 2`,
		unit, tz.String(), from, targets.AckWithin.Seconds(), targets.ResolveWithin.Seconds(), to)
	require.NoError(t, err)
	return scanPlain(t, rows)
}

func near(t testing.TB, want, got *float64, rel, abs float64, msg string) {
	t.Helper()
	if want == nil || got == nil {
		assert.Equal(t, want == nil, got == nil, "%s: null-ness (want %v, got %v)", msg, want, got)
		return
	}
	assert.InDelta(t, *want, *got, math.Abs(*want)*rel+abs, msg)
}

// checkMeasures compares a computed bucket with the plain one: counts and
// means exactly (up to float rounding), percentiles exactly or within the
// documented histogram bound.
func checkMeasures(t testing.TB, p plainPoint, opened int64, m incidents.Measures, approx bool, msg string) {
	t.Helper()
	assert.Equal(t, p.n, opened, msg+": opened")
	assert.Equal(t, p.ackN, m.Acknowledged, msg+": acknowledged")
	assert.Equal(t, p.resN, m.Resolved, msg+": resolved")
	assert.Equal(t, p.detN, m.Detected, msg+": detected")
	assert.Equal(t, p.auto, m.AutoResolved, msg+": auto_resolved")
	assert.Equal(t, p.reop, m.Reopened, msg+": reopened")
	near(t, p.mtta, m.MTTA, 1e-9, 1e-6, msg+": mtta")
	near(t, p.mttr, m.MTTR, 1e-9, 1e-6, msg+": mttr")
	near(t, p.mttd, m.MTTD, 1e-9, 1e-6, msg+": mttd")
	near(t, p.rfs, m.MTTRFromStart, 1e-9, 1e-6, msg+": mttr_from_start")
	rel, abs := 1e-9, 1e-6
	if approx {
		rel, abs = incidents.PercentileRelativeError+1e-9, incidents.PercentileAbsoluteError
	}
	near(t, p.aP50, m.MTTAP50, rel, abs, msg+": mtta p50")
	near(t, p.aP90, m.MTTAP90, rel, abs, msg+": mtta p90")
	near(t, p.rP50, m.MTTRP50, rel, abs, msg+": mttr p50")
	near(t, p.rP90, m.MTTRP90, rel, abs, msg+": mttr p90")
	near(t, p.dP50, m.MTTDP50, rel, abs, msg+": mttd p50")
	near(t, p.dP90, m.MTTDP90, rel, abs, msg+": mttd p90")
	if p.n > 0 {
		ar, ai, ri := float64(p.ackN)/float64(p.n), float64(p.ackIn)/float64(p.n), float64(p.resIn)/float64(p.n)
		near(t, &ar, m.AckRate, 1e-12, 0, msg+": ack_rate")
		near(t, &ai, m.AckWithinRatio, 1e-12, 0, msg+": ack_within_ratio")
		near(t, &ri, m.ResolveWithinRatio, 1e-12, 0, msg+": resolve_within_ratio")
	}
	assert.Equal(t, approx && (p.ackN > 0 || p.resN > 0 || p.detN > 0), m.Approximate, msg+": approximate")
}

// checkTrend compares a trend with the plain computation: every plain
// bucket is there with equal figures, every other bucket is empty.
func checkTrend(t testing.TB, got []incidents.TrendPoint, want []plainPoint, keyOf func(incidents.TrendPoint) string, approx bool, name string) {
	t.Helper()
	byKey := map[string]plainPoint{}
	for _, p := range want {
		byKey[p.key+"|"+p.bucket.UTC().Format(time.RFC3339)] = p
	}
	seen := 0
	for _, g := range got {
		k := keyOf(g) + "|" + g.BucketStart.UTC().Format(time.RFC3339)
		p, ok := byKey[k]
		if !ok {
			assert.Zero(t, g.Opened, "%s %s: a bucket without incidents", name, k)
			assert.Nil(t, g.MTTA, "%s %s: null mean in an empty bucket", name, k)
			assert.Nil(t, g.AckRate, "%s %s", name, k)
			continue
		}
		seen++
		checkMeasures(t, p, g.Opened, g.Measures, approx, name+" "+k)
	}
	assert.Equal(t, len(want), seen, "%s: every plain bucket is in the trend", name)
}

func TestTrendsEqualPlainSQL(t *testing.T) {
	s, pool := newStore(t, incidents.Options{})
	loadAnalyticsData(t, s, pool)
	approx := incidents.NewStore(pool, incidents.Options{ExactPercentileLimit: -1, Logger: quietLogger})
	ctx := ctxT(t)
	from, to := time.Date(2026, 3, 22, 0, 0, 0, 0, paris), time.Date(2026, 11, 3, 0, 0, 0, 0, paris)
	for _, tc := range []struct {
		bucket incidents.Bucket
		unit   string
		loc    *time.Location
	}{
		{incidents.BucketDay, "day", paris},
		{incidents.BucketWeek, "week", paris},
		{incidents.BucketMonth, "month", paris},
		{incidents.BucketDay, "day", time.UTC},
		{incidents.BucketDay, "day", mustLocation("America/New_York")},
		{incidents.BucketWeek, "week", mustLocation("Asia/Kolkata")},
	} {
		for _, st := range []struct {
			name   string
			store  *incidents.Store
			approx bool
		}{{"exact", s, false}, {"rollup", approx, true}} {
			name := fmt.Sprintf("%s/%s/%s", tc.bucket, tc.loc, st.name)
			q := incidents.TrendsQuery{Bucket: tc.bucket, Location: tc.loc, From: from, To: to}
			// the plain window: whole buckets, as Trends widens it
			wantFrom, wantTo := truncLocal(t, pool, tc.unit, tc.loc, from), ceilLocal(t, pool, tc.unit, tc.loc, to)
			// Overall.
			got, err := st.store.Trends(ctx, q)
			require.NoError(t, err)
			checkTrend(t, got, plainTrend(t, pool, "''", tc.unit, tc.loc, wantFrom, wantTo, incidents.Targets{AckWithin: 5 * time.Minute, ResolveWithin: time.Hour}),
				func(incidents.TrendPoint) string { return "" }, st.approx, name+"/overall")
			require.NotEmpty(t, got)
			for i := 1; i < len(got); i++ {
				require.True(t, got[i-1].BucketStart.Before(got[i].BucketStart), "%s: buckets in order", name)
			}
			assert.True(t, got[0].BucketStart.Equal(wantFrom), "%s: first bucket %v, want %v", name, got[0].BucketStart, wantFrom)
			// Per service.
			q.GroupBy = incidents.GroupByService
			got, err = st.store.Trends(ctx, q)
			require.NoError(t, err)
			checkTrend(t, got, plainTrend(t, pool, "svc", tc.unit, tc.loc, wantFrom, wantTo, incidents.Targets{AckWithin: 5 * time.Minute, ResolveWithin: time.Hour}),
				func(p incidents.TrendPoint) string { return p.Service }, st.approx, name+"/by-service")
			// One service, other targets.
			q = incidents.TrendsQuery{Bucket: tc.bucket, Location: tc.loc, From: from, To: to, Service: "unknown",
				Targets: incidents.Targets{AckWithin: time.Minute, ResolveWithin: 4 * time.Hour}}
			got, err = st.store.Trends(ctx, q)
			require.NoError(t, err)
			want := plainTrend(t, pool, "svc", tc.unit, tc.loc, wantFrom, wantTo, q.Targets)
			var only []plainPoint
			for _, p := range want {
				if p.key == "unknown" {
					only = append(only, p)
				}
			}
			require.NotEmpty(t, only)
			checkTrend(t, got, only, func(p incidents.TrendPoint) string { return p.Service }, st.approx, name+"/unknown")
		}
	}
}

func truncLocal(t *testing.T, pool *pgxpool.Pool, unit string, loc *time.Location, at time.Time) time.Time {
	var out time.Time
	require.NoError(t, pool.QueryRow(ctxT(t), `SELECT date_trunc($1, $3::timestamptz AT TIME ZONE $2) AT TIME ZONE $2`, unit, loc.String(), at).Scan(&out))
	return out
}

func ceilLocal(t *testing.T, pool *pgxpool.Pool, unit string, loc *time.Location, at time.Time) time.Time {
	var out time.Time
	require.NoError(t, pool.QueryRow(ctxT(t), `SELECT CASE WHEN date_trunc($1, $3::timestamptz AT TIME ZONE $2) AT TIME ZONE $2 = $3 THEN $3
		ELSE (date_trunc($1, $3::timestamptz AT TIME ZONE $2) + ('1 ' || $1)::interval) AT TIME ZONE $2 END`, unit, loc.String(), at).Scan(&out))
	return out
}

// The DST days of Europe/Paris have 23 and 25 hours; their buckets start
// at local midnight.
func TestTrendsDSTBuckets(t *testing.T) {
	s, _ := newStore(t, incidents.Options{})
	ctx := ctxT(t)
	got, err := s.Trends(ctx, incidents.TrendsQuery{Bucket: incidents.BucketDay, Location: paris,
		From: time.Date(2026, 3, 28, 12, 0, 0, 0, paris), To: time.Date(2026, 3, 31, 0, 0, 0, 0, paris)})
	require.NoError(t, err)
	var starts []string
	for _, p := range got {
		starts = append(starts, p.BucketStart.Format(time.RFC3339))
		assert.Zero(t, p.Opened)
		assert.Nil(t, p.MTTA)
		assert.Nil(t, p.AckWithinRatio)
	}
	assert.Equal(t, []string{"2026-03-28T00:00:00+01:00", "2026-03-29T00:00:00+01:00", "2026-03-30T00:00:00+02:00"}, starts)
	got, err = s.Trends(ctx, incidents.TrendsQuery{Bucket: incidents.BucketWeek, Location: paris,
		From: time.Date(2026, 10, 20, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)})
	require.NoError(t, err)
	starts = nil
	for _, p := range got {
		starts = append(starts, p.BucketStart.Format(time.RFC3339))
	}
	assert.Equal(t, []string{"2026-10-19T00:00:00+02:00", "2026-10-26T00:00:00+01:00"}, starts)
}

func TestBreakdownEqualPlainSQL(t *testing.T) {
	s, pool := newStore(t, incidents.Options{})
	loadAnalyticsData(t, s, pool)
	approx := incidents.NewStore(pool, incidents.Options{ExactPercentileLimit: -1, Logger: quietLogger})
	ctx := ctxT(t)
	targets := incidents.Targets{AckWithin: 5 * time.Minute, ResolveWithin: time.Hour}
	windows := []struct {
		name     string
		from, to time.Time
	}{
		{"all time", time.Time{}, time.Time{}},
		{"edges inside days", time.Date(2026, 3, 25, 7, 13, 0, 0, time.UTC), time.Date(2026, 10, 27, 16, 41, 0, 0, time.UTC)},
		{"edges after noon", time.Date(2026, 3, 25, 19, 0, 0, 0, time.UTC), time.Date(2026, 10, 22, 20, 0, 0, 0, time.UTC)},
		{"open end", time.Date(2026, 3, 29, 23, 0, 0, 0, time.UTC), time.Time{}},
		{"open start", time.Time{}, time.Date(2026, 10, 25, 1, 30, 0, 0, time.UTC)},
		{"under a day", time.Date(2026, 3, 28, 20, 0, 0, 0, time.UTC), time.Date(2026, 3, 29, 3, 0, 0, 0, time.UTC)},
	}
	for _, w := range windows {
		var from, to any
		if !w.from.IsZero() {
			from = w.from
		}
		if !w.to.IsZero() {
			to = w.to
		}
		for _, g := range []struct {
			by   incidents.GroupBy
			expr string
			args []any
		}{
			{incidents.GroupByService, "svc", nil},
			{incidents.GroupBySeverity, "severity", nil},
			{incidents.GroupByLabel("team"), "coalesce(labels->>$7, '')", []any{"team"}},
		} {
			want := plainBreakdownAny(t, pool, g.expr, from, to, targets, g.args...)
			for _, st := range []struct {
				name   string
				store  *incidents.Store
				approx bool
			}{{"exact", s, false}, {"rollup", approx, true}} {
				name := fmt.Sprintf("%s/%s/%s", w.name, g.by, st.name)
				page, err := st.store.Breakdown(ctx, incidents.BreakdownQuery{GroupBy: g.by, From: w.from, To: w.to, Targets: targets})
				require.NoError(t, err)
				require.Len(t, page.Rows, len(want), name)
				isApprox := st.approx && (g.by == incidents.GroupByService || g.by == incidents.GroupBySeverity)
				for i, r := range page.Rows {
					p, ok := want[r.Key]
					require.True(t, ok, "%s: key %q", name, r.Key)
					checkMeasures(t, p, r.Total, r.Measures, isApprox, name+" "+r.Key)
					if i > 0 {
						prev := page.Rows[i-1]
						assert.True(t, prev.Total > r.Total || prev.Total == r.Total && prev.Key < r.Key, "%s: sorted by total", name)
					}
				}
			}
		}
	}
}

func plainBreakdownAny(t testing.TB, pool *pgxpool.Pool, keyExpr string, from, to any, targets incidents.Targets, args ...any) map[string]plainPoint {
	t.Helper()
	all := append([]any{nil, nil, from, targets.AckWithin.Seconds(), targets.ResolveWithin.Seconds(), to}, args...)
	rows, err := pool.Query(ctxT(t), `SELECT `+keyExpr+`, now(), `+plainMeasures+`
		FROM (`+plainBase+`) b WHERE ($1::text IS NULL OR $2::text IS NULL OR true)
		AND ($3::timestamptz IS NULL OR created_at >= $3) AND ($6::timestamptz IS NULL OR created_at < $6) GROUP BY 1`, all...)
	require.NoError(t, err)
	out := map[string]plainPoint{}
	for _, p := range scanPlain(t, rows) {
		out[p.key] = p
	}
	return out
}

func TestBreakdownSortAndPages(t *testing.T) {
	s, pool := newStore(t, incidents.Options{})
	loadAnalyticsData(t, s, pool)
	ctx := ctxT(t)
	all, err := s.Breakdown(ctx, incidents.BreakdownQuery{GroupBy: incidents.GroupByService, Sort: "key"})
	require.NoError(t, err)
	keys := make([]string, len(all.Rows))
	for i, r := range all.Rows {
		keys[i] = r.Key
	}
	assert.True(t, sort.StringsAreSorted(keys), keys)
	assert.Contains(t, keys, "unknown")
	var paged []string
	for off := 0; ; {
		p, err := s.Breakdown(ctx, incidents.BreakdownQuery{GroupBy: incidents.GroupByService, Sort: "key", Limit: 2, Offset: off})
		require.NoError(t, err)
		for _, r := range p.Rows {
			paged = append(paged, r.Key)
		}
		assert.Equal(t, len(keys), p.Groups)
		if p.NextOffset == 0 {
			break
		}
		off = p.NextOffset
	}
	assert.Equal(t, keys, paged)
	asc := true
	byMTTA, err := s.Breakdown(ctx, incidents.BreakdownQuery{GroupBy: incidents.GroupBySeverity, Sort: "mtta", Ascending: &asc})
	require.NoError(t, err)
	for i := 1; i < len(byMTTA.Rows); i++ {
		assert.LessOrEqual(t, *byMTTA.Rows[i-1].MTTA, *byMTTA.Rows[i].MTTA)
	}
	for _, bad := range []incidents.BreakdownQuery{
		{}, {GroupBy: "label:"}, {GroupBy: "team"}, {GroupBy: "service", Sort: "nope"}, {GroupBy: "service", Limit: 5000},
		{GroupBy: "service", Offset: -1}, {GroupBy: "service", Targets: incidents.Targets{AckWithin: -time.Second}},
		{GroupBy: "service", From: time.Unix(10, 0), To: time.Unix(5, 0)},
	} {
		_, err := s.Breakdown(ctx, bad)
		assert.ErrorIs(t, err, incidents.ErrInvalid, "%+v", bad)
	}
}

// TestAllTimeBreakdownFollowsWrites: an all-time breakdown read through the
// store's copy of the rollup rows still equals plain SQL after every kind of
// write between two reads: by the store, by plain SQL, a new service, a
// deleted one, and a rebuild of the rollups.
func TestAllTimeBreakdownFollowsWrites(t *testing.T) {
	s, pool := newStore(t, incidents.Options{})
	loadAnalyticsData(t, s, pool)
	approx := incidents.NewStore(pool, incidents.Options{ExactPercentileLimit: -1, Logger: quietLogger})
	ctx := ctxT(t)
	targets := incidents.Targets{AckWithin: 5 * time.Minute, ResolveWithin: time.Hour}
	check := func(step string) {
		t.Helper()
		for _, g := range []struct {
			by   incidents.GroupBy
			expr string
		}{{incidents.GroupByService, "svc"}, {incidents.GroupBySeverity, "severity"}} {
			want := plainBreakdownAny(t, pool, g.expr, nil, nil, targets)
			// Twice: the second read is served from the rows the first kept.
			for pass := 0; pass < 2; pass++ {
				page, err := approx.Breakdown(ctx, incidents.BreakdownQuery{GroupBy: g.by, Targets: targets})
				require.NoError(t, err)
				require.Len(t, page.Rows, len(want), step)
				for _, r := range page.Rows {
					p, ok := want[r.Key]
					require.True(t, ok, "%s: key %q", step, r.Key)
					checkMeasures(t, p, r.Total, r.Measures, true, fmt.Sprintf("%s/%s/%d %s", step, g.by, pass, r.Key))
				}
				// The second read is an answer the store kept: what the
				// first handed out is the caller's to change.
				for _, r := range page.Rows {
					for _, f := range []*float64{r.MTTA, r.MTTAP50, r.MTTRP90, r.AckWithinRatio} {
						if f != nil {
							*f = -1
						}
					}
				}
			}
		}
	}
	check("loaded")
	var id string
	require.NoError(t, pool.QueryRow(ctx, `SELECT id::text FROM incidents WHERE status = 'open' ORDER BY created_at LIMIT 1`).Scan(&id))
	_, err := s.Acknowledge(ctx, id)
	require.NoError(t, err)
	check("acknowledged by the store")
	_, err = pool.Exec(ctx, `UPDATE incidents SET status = 'resolved', resolved_at = created_at + interval '2 hours'
		WHERE id IN (SELECT id FROM incidents WHERE status = 'acknowledged' ORDER BY created_at LIMIT 5)`)
	require.NoError(t, err)
	check("resolved by plain SQL")
	_, err = pool.Exec(ctx, `INSERT INTO incidents (title, severity, source, status, created_at, updated_at)
		VALUES ('new', 'critical', 'svc-new', 'open', '2026-05-01T10:00:00Z', '2026-05-01T10:00:00Z')`)
	require.NoError(t, err)
	check("a new service")
	_, err = pool.Exec(ctx, `DELETE FROM incidents WHERE source = 'svc-1'`)
	require.NoError(t, err)
	check("a service deleted")
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `SAVEPOINT a`)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `UPDATE incidents SET severity = 'info' WHERE source = 'svc-2'`)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `ROLLBACK TO SAVEPOINT a`)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `UPDATE incidents SET severity = 'warning' WHERE source = 'svc-3'`)
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))
	check("a savepoint rolled back, then a write in the same transaction")
	require.NoError(t, s.RebuildRollups(ctx))
	check("rollups rebuilt")
}
