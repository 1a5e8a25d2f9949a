package incidents_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/incidents"
	"github.com/promflow/promflow/promflowtest"
)

// The rollups' numeric sums are read in binary and decoded in Go: every
// value equals the server's own ::float8 cast, on the fast path (up to 16
// digits), the slow one (more digits, large and tiny exponents) and the
// special values.
func TestNumericFloatEqualsCast(t *testing.T) {
	pool := testPool(t, promflowtest.DatabaseURL(t))
	rows, err := pool.Query(ctxT(t), `
		SELECT v, v::float8 FROM (
			SELECT (random() * 10 ^ (floor(random() * 30) - 8))::numeric(60, 6) AS v FROM generate_series(1, 3000)
			UNION ALL SELECT round((random() - 0.5) * 1e12)::numeric / 1000000 FROM generate_series(1, 3000)
			UNION ALL SELECT (random()::numeric * 10::numeric ^ 40) FROM generate_series(1, 500)
			UNION ALL SELECT (random()::numeric / 10::numeric ^ 30) FROM generate_series(1, 500)
			UNION ALL SELECT unnest(ARRAY[0, -0.000001, 9007199254740993, 9007199254740992.5, 1e22, 1e23,
				123456789012345678901234567890.123456, 'NaN', 'Infinity', '-Infinity', 0.1, 1e-7]::numeric[])
		) s`, pgx.QueryResultFormats{pgx.BinaryFormatCode, pgx.BinaryFormatCode})
	require.NoError(t, err)
	defer rows.Close()
	n := 0
	for rows.Next() {
		raw := rows.RawValues()
		got, err := incidents.NumericFloat(raw[0])
		require.NoError(t, err, "%x", raw[0])
		var want float64
		require.NoError(t, rows.Scan(nil, &want))
		if got != want && !(math.IsNaN(got) && math.IsNaN(want)) {
			t.Fatalf("numeric %x: decoded %v, ::float8 %v", raw[0], got, want)
		}
		n++
	}
	require.NoError(t, rows.Err())
	require.Equal(t, 7012, n)
	for _, bad := range [][]byte{nil, {0, 1}, {0, 1, 0, 0, 0, 0, 0, 0}, {0, 1, 0, 0, 0x12, 0x34, 0, 0, 0, 1}, {0, 1, 0, 0, 0, 0, 0, 0, 0x27, 0x10}} {
		_, err := incidents.NumericFloat(bad)
		require.Error(t, err, "%x", bad)
	}
}

// The edges of an analytics window put base-table rows into histogram
// slots in Go; the rollups put them there in SQL. Both agree on whole
// seconds and milliseconds (the durations people write), random values
// over 12 decades, and the neighbours of every slot boundary.
func TestDurationSlotEqualsSQL(t *testing.T) {
	store, pool := newStore(t, incidents.Options{})
	var vals []float64
	for i := 1; i <= 200_000; i++ {
		vals = append(vals, float64(i), float64(i)/1000)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 100_000; i++ {
		vals = append(vals, math.Pow(10, -3+12*rng.Float64()))
	}
	for k := 0; k <= 8*28; k++ {
		b := math.Pow(2, float64(k)/8) / 16
		for _, v := range []float64{b, math.Nextafter(b, 0), math.Nextafter(b, math.Inf(1)),
			math.Nextafter(math.Nextafter(b, 0), 0), math.Nextafter(math.Nextafter(b, 2*b), 2*b)} {
			vals = append(vals, v)
		}
	}
	vals = append(vals, 0, -1, 0.0625, math.Nextafter(0.0625, 0), 1e300)
	rows, err := pool.Query(ctxT(t), `SELECT v, incidents_duration_bucket(v) FROM unnest($1::float8[]) v`, vals)
	require.NoError(t, err)
	defer rows.Close()
	n := 0
	for rows.Next() {
		var v float64
		var want int32
		require.NoError(t, rows.Scan(&v, &want))
		got, err := incidents.SlotOf(ctxT(t), store, v)
		require.NoError(t, err)
		if got != want {
			t.Fatalf("%v s (%x): Go slot %d, SQL slot %d", v, math.Float64bits(v), got, want)
		}
		n++
	}
	require.NoError(t, rows.Err())
	require.Equal(t, len(vals), n)
	got, err := incidents.SlotOf(ctxT(t), store, math.NaN())
	require.NoError(t, err)
	require.Zero(t, got)
}
