package incidents_test

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/incidents"
)

var day0 = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)

// loadFixture writes a fixed data set with plain SQL (so the triggers, not
// the store, build the rollups). Durations are in seconds; -1 means none.
func loadFixture(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	rows := []struct {
		source, status string
		created        time.Duration // since day0
		ack, res       int
	}{
		{"api", "resolved", 10 * time.Hour, 60, 600},
		{"api", "resolved", 12 * time.Hour, 120, 1200},
		{"api", "acknowledged", 33 * time.Hour, 300, -1},
		{"api", "open", 56 * time.Hour, -1, -1},
		{"db", "resolved", 23 * time.Hour, 30, 3600},
		{"db", "open", 25 * time.Hour, -1, -1},
		{"db", "resolved", 72 * time.Hour, -1, 7200},
		{"db", "closed", 26 * time.Hour, 10, 100},
	}
	for _, r := range rows {
		created := day0.Add(r.created)
		var ack, res *time.Time
		if r.ack >= 0 {
			a := created.Add(time.Duration(r.ack) * time.Second)
			ack = &a
		}
		if r.res >= 0 {
			x := created.Add(time.Duration(r.res) * time.Second)
			res = &x
		}
		_, err := pool.Exec(ctxT(t), `INSERT INTO incidents (title, source, status, created_at, updated_at, acknowledged_at, resolved_at)
			VALUES ('fixture', $1, $2, $3, $3, $4, $5)`, r.source, r.status, created, ack, res)
		require.NoError(t, err)
	}
}

func durations(count int64, mean, p50, p90, p99 float64) *incidents.Durations {
	return &incidents.Durations{Count: count, Mean: mean, P50: p50, P90: p90, P99: p99}
}

func assertDurations(t *testing.T, want, got *incidents.Durations, relTol float64, msg string) {
	t.Helper()
	if want == nil {
		assert.Nil(t, got, msg)
		return
	}
	require.NotNil(t, got, msg)
	assert.Equal(t, want.Count, got.Count, msg)
	assert.InDelta(t, want.Mean, got.Mean, 1e-6, msg+" mean")
	for _, p := range []struct {
		name      string
		want, got float64
	}{{"p50", want.P50, got.P50}, {"p90", want.P90, got.P90}, {"p99", want.P99, got.P99}} {
		assert.InDelta(t, p.want, p.got, p.want*relTol+1e-6, "%s %s", msg, p.name)
	}
}

func TestStatsFixedDataSet(t *testing.T) {
	ctx := ctxT(t)
	pool := newPool(t)
	loadFixture(t, pool)
	exact := incidents.NewStore(pool, incidents.Options{})
	approx := incidents.NewStore(pool, incidents.Options{ExactPercentileLimit: -1})
	rel := incidents.PercentileRelativeError

	// All time, computed by hand.
	for _, tc := range []struct {
		name  string
		store *incidents.Store
		tol   float64
	}{{"exact", exact, 0}, {"histogram", approx, rel}} {
		st, err := tc.store.Stats(ctx, incidents.StatsQuery{})
		require.NoError(t, err, tc.name)
		assert.Equal(t, tc.tol != 0, st.ApproximatePercentiles)
		require.Len(t, st.Services, 2)
		api, db, all := st.Services[0], st.Services[1], st.Overall
		assert.Equal(t, "api", api.Service)
		assert.Equal(t, int64(4), api.Incidents)
		assert.Equal(t, [4]int64{1, 1, 2, 0}, [4]int64{api.Open, api.Acknowledged, api.Resolved, api.Closed})
		assert.Equal(t, int64(2), api.StillOpen)
		assert.Equal(t, int64(1), api.Unacknowledged)
		assert.InDelta(t, 0.75, *api.AckRate, 1e-12)
		assertDurations(t, durations(3, 160, 120, 264, 296.4), api.MTTA, tc.tol, tc.name+" api mtta")
		assertDurations(t, durations(2, 900, 900, 1140, 1194), api.MTTR, tc.tol, tc.name+" api mttr")
		assert.Equal(t, [4]int64{1, 0, 2, 1}, [4]int64{db.Open, db.Acknowledged, db.Resolved, db.Closed})
		assert.Equal(t, int64(1), db.StillOpen)
		assert.InDelta(t, 0.5, *db.AckRate, 1e-12)
		assertDurations(t, durations(2, 20, 20, 28, 29.8), db.MTTA, tc.tol, tc.name+" db mtta")
		assertDurations(t, durations(3, 10900.0/3, 3600, 6480, 7128), db.MTTR, tc.tol, tc.name+" db mttr")
		assert.Equal(t, int64(8), all.Incidents)
		assert.Equal(t, int64(3), all.StillOpen)
		assert.InDelta(t, 5.0/8, *all.AckRate, 1e-12)
		assertDurations(t, durations(5, 104, 60, 228, 292.8), all.MTTA, tc.tol, tc.name+" overall mtta")
		assertDurations(t, durations(5, 2540, 1200, 5760, 7056), all.MTTR, tc.tol, tc.name+" overall mttr")
	}

	// A window inside two days (base table only): A2, B1, B2, B4.
	st, err := exact.Stats(ctx, incidents.StatsQuery{From: day0.Add(11 * time.Hour), To: day0.Add(29 * time.Hour)})
	require.NoError(t, err)
	assert.Equal(t, int64(4), st.Overall.Incidents)
	assertDurations(t, durations(3, 160.0/3, 30, 102, 118.2), st.Overall.MTTA, 0, "short window mtta")
	assertDurations(t, durations(3, 4900.0/3, 1200, 3120, 3552), st.Overall.MTTR, 0, "short window mttr")

	// A window with whole days (rollup) and a partial edge day (base table):
	// A2, B1, A3, A4, B2, B4; B3 at the upper bound is excluded.
	for _, s := range []*incidents.Store{exact, approx} {
		st, err = s.Stats(ctx, incidents.StatsQuery{From: day0.Add(11 * time.Hour), To: day0.Add(72 * time.Hour)})
		require.NoError(t, err)
		tol := 0.0
		if st.ApproximatePercentiles {
			tol = rel
		}
		assert.Equal(t, int64(6), st.Overall.Incidents)
		assert.Equal(t, int64(3), st.Overall.StillOpen) // A3, A4, B2
		// acks 10, 30, 120, 300; resolutions 100, 1200, 3600
		assertDurations(t, durations(4, 115, 75, 246, 294.6), st.Overall.MTTA, tol, "window mtta")
		assertDurations(t, durations(3, 4900.0/3, 1200, 3120, 3552), st.Overall.MTTR, tol, "window mttr")
	}

	// One service, open-ended window.
	st, err = exact.Stats(ctx, incidents.StatsQuery{From: day0.Add(24 * time.Hour), Service: "db"})
	require.NoError(t, err)
	require.Len(t, st.Services, 1)
	assert.Equal(t, "db", st.Services[0].Service)
	assert.Equal(t, int64(3), st.Overall.Incidents) // B2, B3, B4
	assertDurations(t, durations(1, 10, 10, 10, 10), st.Overall.MTTA, 0, "db mtta")
	assertDurations(t, durations(2, 3650, 3650, 6490, 7129), st.Overall.MTTR, 0, "db mttr")

	// An empty window.
	st, err = exact.Stats(ctx, incidents.StatsQuery{From: day0.Add(-48 * time.Hour), To: day0})
	require.NoError(t, err)
	assert.Zero(t, st.Overall.Incidents)
	assert.Nil(t, st.Overall.MTTA)
	assert.Nil(t, st.Overall.AckRate)
	assert.Empty(t, st.Services)

	_, err = exact.Stats(ctx, incidents.StatsQuery{From: day0, To: day0})
	assert.ErrorIs(t, err, incidents.ErrInvalid)
}

func newPool(t *testing.T) *pgxpool.Pool {
	_, pool := newStore(t, incidents.Options{})
	return pool
}

// TestPercentileErrorBound checks the documented bound: on a few thousand
// log-normal durations, every histogram percentile is within
// PercentileRelativeError of the exact percentile_cont, for all time and for
// windows whose edges cut days.
func TestPercentileErrorBound(t *testing.T) {
	ctx := ctxT(t)
	pool := newPool(t)
	n := 3000
	if testing.Short() {
		n = 1000
	}
	rng := rand.New(rand.NewPCG(1, 2))
	services := []string{"a", "b", "c"}
	rows := make([][]any, 0, n)
	for i := 0; i < n; i++ {
		created := day0.Add(time.Duration(rng.Int64N(int64(20 * 24 * time.Hour))))
		ack := created.Add(time.Duration(math.Exp(rng.NormFloat64()*1.5+5.5) * float64(time.Second)))
		res := ack.Add(time.Duration(math.Exp(rng.NormFloat64()*1.2+7.5) * float64(time.Second)))
		status := "resolved"
		var resAt any = res
		if rng.IntN(5) == 0 {
			status, resAt = "acknowledged", nil
		}
		rows = append(rows, []any{"t", services[rng.IntN(3)], status, created, created, ack, resAt})
	}
	// Bulk load with the triggers off, then rebuild: the import path the
	// package documents (and a test of RebuildRollups).
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "ALTER TABLE incidents DISABLE TRIGGER USER"); err != nil {
			return err
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"incidents"},
			[]string{"title", "source", "status", "created_at", "updated_at", "acknowledged_at", "resolved_at"}, pgx.CopyFromRows(rows)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "ALTER TABLE incidents ENABLE TRIGGER USER")
		return err
	})
	require.NoError(t, err)
	diffs, err := rollupDiff(ctx, pool)
	require.NoError(t, err)
	require.NotEmpty(t, diffs, "rollups are stale before the rebuild")
	require.NoError(t, incidents.NewStore(pool, incidents.Options{}).RebuildRollups(ctx))
	requireRollupsExact(t, pool)

	exact := incidents.NewStore(pool, incidents.Options{ExactPercentileLimit: math.MaxInt32})
	approx := incidents.NewStore(pool, incidents.Options{ExactPercentileLimit: -1})
	for _, q := range []incidents.StatsQuery{
		{},
		{From: day0.Add(30 * time.Hour), To: day0.Add(15*24*time.Hour + 7*time.Hour)},
		{From: day0.Add(5 * 24 * time.Hour), Service: "b"},
	} {
		want, err := exact.Stats(ctx, q)
		require.NoError(t, err)
		got, err := approx.Stats(ctx, q)
		require.NoError(t, err)
		require.False(t, want.ApproximatePercentiles)
		require.True(t, got.ApproximatePercentiles)
		require.Len(t, got.Services, len(want.Services))
		check := func(w, g incidents.ServiceStats) {
			assert.Equal(t, w.Incidents, g.Incidents)
			assert.Equal(t, w.StillOpen, g.StillOpen)
			assertDurations(t, w.MTTA, g.MTTA, incidents.PercentileRelativeError, "mtta "+w.Service)
			assertDurations(t, w.MTTR, g.MTTR, incidents.PercentileRelativeError, "mttr "+w.Service)
		}
		check(want.Overall, got.Overall)
		for i := range want.Services {
			check(want.Services[i], got.Services[i])
		}
	}
}

var _ = context.Background
