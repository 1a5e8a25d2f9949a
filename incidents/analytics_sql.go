package incidents

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// rollupPlan says which rollup rows answer a trend: dimension 0 (service)
// or 1 (severity), -1 for none; key filters one service.
type rollupPlan struct {
	dim     int
	key     string
	groupBy GroupBy
}

// measureCols are the per-incident measures of the analytics queries, by
// the package's rules; the trigger of migration 0006 computes the same.
const measureCols = `extract(epoch FROM acknowledged_at - created_at) AS a,
	extract(epoch FROM incidents_resolution(status, resolved_at) - created_at) AS r,
	incidents_nonneg(extract(epoch FROM created_at - starts_at)) AS d,
	incidents_nonneg(extract(epoch FROM incidents_resolution(status, resolved_at) - starts_at)) AS rfs,
	reopen_count AS reopen`

// analyticsRollupCols are the columns of an analytics rollup row that
// decodeRollupRows reads: packed holds every number (migrations 0007, 0008).
const analyticsRollupCols = `period, key, packed`

type sqlArgs struct{ v []any }

func (a *sqlArgs) add(v any) string {
	a.v = append(a.v, v)
	return "$" + strconv.Itoa(len(a.v))
}

// keyExpr is the SQL of a group's key; a label key travels as a parameter.
func keyExpr(g GroupBy, args *sqlArgs) string {
	switch g {
	case GroupByService:
		return "incidents_service(source)"
	case GroupBySeverity:
		return "severity"
	case GroupByNone:
		return "''::text"
	}
	key, _ := g.Label()
	return "coalesce(labels->>" + args.add(key) + ", '')"
}

// exactGroups computes every measure, percentiles included, from the base
// table. With trend, bounds are bucket starts (n buckets, n+1 bounds);
// otherwise bounds is nil (all time) or the window [from, to), zero meaning
// unbounded, and there is one bucket.
func (s *Store) exactGroups(ctx context.Context, g GroupBy, service string, bounds []time.Time, trend bool, t Targets) (map[string][]acc, error) {
	var args sqlArgs
	key := keyExpr(g, &args)
	bucket, n := "0", 1
	where := []string{"true"}
	if trend {
		n = len(bounds) - 1
		bucket = "width_bucket(created_at, " + args.add(bounds) + "::timestamptz[]) - 1"
	}
	if len(bounds) >= 2 {
		if !bounds[0].IsZero() {
			where = append(where, "created_at >= "+args.add(bounds[0]))
		}
		if last := bounds[len(bounds)-1]; !last.IsZero() {
			where = append(where, "created_at < "+args.add(last))
		}
	}
	if service != "" {
		where = append(where, serviceCond(args.add(service), service))
	}
	ackT, resT := args.add(t.AckWithin.Seconds()), args.add(t.ResolveWithin.Seconds())
	sql := `SELECT k, bkt::int4, count(*), count(a), coalesce(sum(a), 0)::float8, count(r), coalesce(sum(r), 0)::float8,
		count(d), coalesce(sum(d), 0)::float8, count(rfs), coalesce(sum(rfs), 0)::float8,
		count(*) FILTER (WHERE r IS NOT NULL AND a IS NULL), count(*) FILTER (WHERE reopen > 0),
		count(*) FILTER (WHERE a <= ` + ackT + `::numeric), count(*) FILTER (WHERE r <= ` + resT + `::numeric),
		percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY a::float8),
		percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY r::float8),
		percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY d::float8)
		FROM (SELECT ` + key + ` AS k, ` + bucket + ` AS bkt, ` + measureCols + `
		      FROM incidents WHERE ` + strings.Join(where, " AND ") + `) w
		GROUP BY k, bkt`
	rows, err := s.pool.Query(ctx, sql, args.v...)
	if err != nil {
		return nil, errAnalytics(err)
	}
	defer rows.Close()
	out := map[string][]acc{}
	for rows.Next() {
		var (
			k          string
			b          int32
			a          acc
			ap, rp, dp []*float64
		)
		if err := rows.Scan(&k, &b, &a.total, &a.ackN, &a.ackSum, &a.resN, &a.resSum, &a.detN, &a.detSum,
			&a.rfsN, &a.rfsSum, &a.auto, &a.reopened, &a.ackIn, &a.resIn, &ap, &rp, &dp); err != nil {
			return nil, errAnalytics(err)
		}
		var ex [6]*float64
		for i, arr := range [][]*float64{ap, rp, dp} {
			if len(arr) == 2 {
				ex[2*i], ex[2*i+1] = arr[0], arr[1]
			}
		}
		a.exact = &ex
		if b < 0 || int(b) >= n {
			continue
		}
		if out[k] == nil {
			out[k] = make([]acc, n)
		}
		out[k][b] = a
	}
	if err := rows.Err(); err != nil {
		return nil, errAnalytics(err)
	}
	for _, g := range out {
		for i := range g {
			if g[i].exact == nil {
				g[i].exact = &[6]*float64{}
			}
		}
	}
	return out, nil
}

// trendRollup reads a trend from the rollup of the bucket's grain: the
// UTC units nearest to each bucket bound, corrected by the base-table rows
// between each bound and its unit (added to their true bucket, taken from
// the bucket the rollup counted them in).
func (s *Store) trendRollup(ctx context.Context, p rollupPlan, b Bucket, bounds []time.Time, sl *slab) (map[string][]acc, error) {
	grain := map[Bucket]int{BucketDay: 1, BucketWeek: 2, BucketMonth: 3}[b]
	n := len(bounds) - 1
	units := make([]int64, len(bounds))
	unitT := make([]time.Time, len(bounds))
	for i, t := range bounds {
		units[i] = nearestUTCUnit(b, t)
		unitT[i] = time.Unix(units[i]*86400, 0)
	}
	out := accGroups{n: n, m: map[string][]acc{}}
	var args sqlArgs
	sql := "SELECT " + analyticsRollupCols + " FROM incident_rollup_analytics WHERE grain = " + args.add(grain) +
		" AND dim = " + args.add(p.dim) + " AND period >= " + args.add(units[0]) + " AND period < " + args.add(units[n]) + " AND total <> 0"
	if p.key != "" && p.dim == 0 {
		sql += " AND key = " + args.add(p.key)
	}
	readRollup := func(rows pgx.Rows) error {
		return decodeRollupRows(rows, func(period int64, key []byte, r *rollupRow) {
			i := sort.Search(len(units), func(i int) bool { return units[i] > period }) - 1
			if i >= 0 && i < n {
				r.addTo(&out.get(key)[i], sl)
			}
		})
	}
	var (
		idx    []int32
		lo, hi []time.Time
	)
	for i := range bounds {
		if !bounds[i].Equal(unitT[i]) {
			idx = append(idx, int32(i))
			lo, hi = append(lo, earlier(bounds[i], unitT[i])), append(hi, later(bounds[i], unitT[i]))
		}
	}
	edgeKey, service := GroupBySeverity, ""
	if p.dim == 0 {
		edgeKey, service = GroupByService, p.key
	}
	edgeSQL, edgeArgs := "", []any(nil)
	var slots *slotEdges
	if len(idx) > 0 {
		edgeSQL, edgeArgs = edgeQuery(edgeKey, service, idx, lo, hi)
		var err error
		if slots, err = s.slotEdges(ctx); err != nil {
			return nil, err
		}
	}
	// The edge rows are read after the rollup rows (runQueries keeps the
	// order), so that their corrections land in spans that mostly cover
	// their slots already.
	readEdges := func(rows pgx.Rows) error {
		return decodeEdgeRows(rows, slots, func(k int, created time.Time, key []byte, e *edgeRow) {
			if k < 0 || k >= len(bounds) {
				return
			}
			truth, counted := k, k
			if created.Before(bounds[k]) {
				truth = k - 1
			}
			if created.Before(unitT[k]) {
				counted = k - 1
			}
			if truth == counted {
				return
			}
			g := out.get(key)
			if truth >= 0 && truth < n {
				e.addTo(&g[truth], 1)
			}
			if counted >= 0 && counted < n {
				e.addTo(&g[counted], -1)
			}
		})
	}
	err := s.runQueries(ctx, []string{sql, edgeSQL}, [][]any{args.v, edgeArgs}, []func(pgx.Rows) error{readRollup, readEdges})
	if err != nil {
		return nil, err
	}
	return out.m, nil
}

// accGroups holds the accumulations of a rollup read: n per group key.
type accGroups struct {
	n int
	m map[string][]acc
}

// get returns the accumulations of key k; the key is copied only when
// it is new (a read has thousands of rows and a few hundred keys).
func (g *accGroups) get(k []byte) []acc {
	a := g.m[string(k)]
	if a == nil {
		a = make([]acc, g.n)
		g.m[string(k)] = a
	}
	return a
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// windowRollup reads a breakdown by service or severity over [from, to)
// (zero: unbounded) from the rollups: all-time rows, or UTC months and days
// between the UTC midnights nearest to from and to, corrected by the
// base-table rows between each bound and its midnight. A window shorter
// than a day is read from the base table alone.
func (s *Store) windowRollup(ctx context.Context, g GroupBy, from, to time.Time) (map[string][]acc, error) {
	dim := 0
	if g == GroupBySeverity {
		dim = 1
	}
	out := accGroups{n: 1, m: map[string][]acc{}}
	var (
		args   sqlArgs
		pieces []string
		lo, hi []time.Time
		sign   []int32
	)
	piece := func(grain int, a, b *int64) {
		c := "SELECT " + analyticsRollupCols + " FROM incident_rollup_analytics WHERE grain = " + strconv.Itoa(grain) +
			" AND dim = " + strconv.Itoa(dim) + " AND total <> 0"
		if a != nil {
			c += " AND period >= " + args.add(*a)
		}
		if b != nil {
			c += " AND period < " + args.add(*b)
		}
		pieces = append(pieces, c)
	}
	edge := func(bound time.Time, day int64, start bool) {
		u := time.Unix(day*86400, 0)
		if bound.Equal(u) {
			return
		}
		// Rows between the bound and its midnight: added when the rollup
		// misses them, taken away when it counts them.
		in := bound.Before(u) == start
		lo, hi = append(lo, earlier(bound, u)), append(hi, later(bound, u))
		sign = append(sign, map[bool]int32{true: 1, false: -1}[in])
	}
	switch {
	case from.IsZero() && to.IsZero():
		g, _, err := s.allTimeRollup(ctx, dim)
		return g, err
	case !from.IsZero() && !to.IsZero() && to.Sub(from) < 24*time.Hour:
		lo, hi, sign = []time.Time{from}, []time.Time{to}, []int32{1}
	default:
		var a, b *int64
		if !from.IsZero() {
			d := nearestUTCUnit(BucketDay, from)
			a = &d
			edge(from, d, true)
		}
		if !to.IsZero() {
			d := nearestUTCUnit(BucketDay, to)
			b = &d
			edge(to, d, false)
		}
		monthPieces(a, b, piece)
	}
	rollupSQL := strings.Join(pieces, " UNION ALL ")
	sl := new(slab)
	readRollup := func(rows pgx.Rows) error {
		return decodeRollupRows(rows, func(_ int64, key []byte, r *rollupRow) { r.addTo(&out.get(key)[0], sl) })
	}
	edgeSQL, edgeArgs := "", []any(nil)
	var slots *slotEdges
	if len(lo) > 0 {
		idx := make([]int32, len(lo))
		for i := range idx {
			idx[i] = int32(i)
		}
		edgeSQL, edgeArgs = edgeQuery(g, "", idx, lo, hi)
		var err error
		if slots, err = s.slotEdges(ctx); err != nil {
			return nil, err
		}
	}
	readEdges := func(rows pgx.Rows) error {
		return decodeEdgeRows(rows, slots, func(k int, _ time.Time, key []byte, e *edgeRow) {
			if k >= 0 && k < len(sign) {
				e.addTo(&out.get(key)[0], int64(sign[k]))
			}
		})
	}
	err := s.runQueries(ctx, []string{rollupSQL, edgeSQL}, [][]any{args.v, edgeArgs}, []func(pgx.Rows) error{readRollup, readEdges})
	if err != nil {
		return nil, err
	}
	return out.m, nil
}

// monthPieces covers the days [a, b) (nil: unbounded) with whole UTC months
// where they fit and days at the ends.
func monthPieces(a, b *int64, piece func(grain int, a, b *int64)) {
	monthStart := func(day int64, up bool) int64 {
		t := time.Unix(day*86400, 0).UTC()
		m := time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
		if up && m.Before(t) {
			m = m.AddDate(0, 1, 0)
		}
		return floorDiv(m.Unix(), 86400)
	}
	var m1, m2 *int64
	if a != nil {
		v := monthStart(*a, true)
		m1 = &v
	}
	if b != nil {
		v := monthStart(*b, false)
		m2 = &v
	}
	if m1 != nil && m2 != nil && *m1 >= *m2 {
		piece(1, a, b)
		return
	}
	if a != nil {
		piece(1, a, m1)
	}
	piece(3, m1, m2)
	if b != nil {
		piece(1, m2, b)
	}
}

// rollupRow is one decoded analytics rollup row.
type rollupRow struct {
	c              [19]float64 // total, ack_n, ack_sum, res_n, res_sum, det_n, det_sum, rfs_n, rfs_sum, auto_resolved, reopened, ack_le_*, res_le_*
	ackH, resH, dH packedHist
}

func (r *rollupRow) addTo(a *acc, sl *slab) {
	c := &r.c
	a.total += int64(c[0])
	a.ackN += int64(c[1])
	a.ackSum += c[2]
	a.resN += int64(c[3])
	a.resSum += c[4]
	a.detN += int64(c[5])
	a.detSum += c[6]
	a.rfsN += int64(c[7])
	a.rfsSum += c[8]
	a.auto += int64(c[9])
	a.reopened += int64(c[10])
	for i := 0; i < 4; i++ {
		a.ackLE[i] += int64(c[11+i])
		a.resLE[i] += int64(c[15+i])
	}
	// Lengths were checked when the row was decoded.
	a.ackH.addPacked(&r.ackH, sl)
	a.resH.addPacked(&r.resH, sl)
	a.detH.addPacked(&r.dH, sl)
}

var errMalformedRow = errors.New("incidents: analytics: malformed row")

// decodeRollupRows reads the rows of a query returning analyticsRollupCols
// from the binary column bytes (thousands of rows per answer; the generic
// scan path would cost more than the query).
func decodeRollupRows(rows pgx.Rows, f func(period int64, key []byte, r *rollupRow)) error {
	defer rows.Close()
	if err := binaryColumns(rows, 3); err != nil {
		return err
	}
	var r rollupRow
	for rows.Next() {
		raw := rows.RawValues()
		if len(raw) != 3 || len(raw[0]) != 4 || raw[1] == nil {
			return errMalformedRow
		}
		if err := r.decodePacked(raw[2]); err != nil {
			return err
		}
		f(int64(int32(binary.BigEndian.Uint32(raw[0]))), raw[1], &r)
	}
	if err := rows.Err(); err != nil {
		return errAnalytics(err)
	}
	return nil
}

// decodePacked reads a packed column (layout in migration 0008) into r;
// the histograms alias p.
func (r *rollupRow) decodePacked(p []byte) error {
	const counters = 15
	if len(p) < 8*counters {
		return errMalformedRow
	}
	// r.c is in the order of the old column list: total, ack_n, ack_sum,
	// res_n, res_sum, det_n, det_sum, rfs_n, rfs_sum, auto_resolved,
	// reopened, then the eight within-target counts.
	for i, at := range [counters]int{0, 1, 3, 5, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18} {
		r.c[at] = float64(int64(binary.BigEndian.Uint64(p[8*i:])))
	}
	p = p[8*counters:]
	for _, at := range [4]int{2, 4, 6, 8} {
		if len(p) < 8 {
			return errMalformedRow
		}
		n := 8 + 2*int(binary.BigEndian.Uint16(p))
		if len(p) < n {
			return errMalformedRow
		}
		v, err := numericFloat(p[:n])
		if err != nil {
			return errMalformedRow
		}
		r.c[at], p = v, p[n:]
	}
	for _, h := range [3]*packedHist{&r.ackH, &r.resH, &r.dH} {
		var err error
		if p, err = h.decode(p); err != nil {
			return err
		}
	}
	if len(p) != 0 {
		return errMalformedRow
	}
	return nil
}

func binaryColumns(rows pgx.Rows, n int) error {
	fds := rows.FieldDescriptions()
	if len(fds) != n {
		return errMalformedRow
	}
	for _, fd := range fds {
		// Text travels as text; every other column must be binary.
		if fd.Format != pgx.BinaryFormatCode && fd.DataTypeOID != pgtype.TextOID {
			return errMalformedRow
		}
	}
	return nil
}

// edgeRow is one base-table incident of a window edge.
type edgeRow struct {
	v      [4]float64 // a, r, d, rfs; NaN for none
	reopen int32
	slot   [3]int32 // histogram slots of a, r, d
}

func (e *edgeRow) addTo(a *acc, w int64) {
	a.total += w
	has := func(i int) bool { return !math.IsNaN(e.v[i]) }
	if has(0) {
		a.ackN += w
		a.ackSum += float64(w) * e.v[0]
		for i, t := range exactAckSeconds {
			if e.v[0] <= t {
				a.ackLE[i] += w
			}
		}
		a.ackH.bump(int(e.slot[0]), w)
	}
	if has(1) {
		a.resN += w
		a.resSum += float64(w) * e.v[1]
		for i, t := range exactResolveSeconds {
			if e.v[1] <= t {
				a.resLE[i] += w
			}
		}
		a.resH.bump(int(e.slot[1]), w)
		if !has(0) {
			a.auto += w
		}
	}
	if has(2) {
		a.detN += w
		a.detSum += float64(w) * e.v[2]
		a.detH.bump(int(e.slot[2]), w)
	}
	if has(3) {
		a.rfsN += w
		a.rfsSum += float64(w) * e.v[3]
	}
	if e.reopen > 0 {
		a.reopened += w
	}
}

// The exact targets in seconds, as an edge row's durations are.
var exactAckSeconds, exactResolveSeconds = seconds(exactAckTargets), seconds(exactResolveTargets)

func seconds(ds [4]time.Duration) (out [4]float64) {
	for i, d := range ds {
		out[i] = d.Seconds()
	}
	return out
}

// pgEpoch is PostgreSQL's timestamp origin, 2000-01-01 UTC.
var pgEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// edgeQuery selects the incidents created in [lo[i], hi[i]) for each i,
// with idx[i], the creation time, the group key and the raw times the
// measures come from (see edgeMeasures): the index-only scan returns them
// at a fraction of a microsecond a row, where computing the measures in
// SQL (numeric epochs, logarithms) costs tens of times more.
func edgeQuery(g GroupBy, service string, idx []int32, lo, hi []time.Time) (string, []any) {
	var args sqlArgs
	key := keyExpr(g, &args)
	svc := ""
	if service != "" {
		svc = " AND " + serviceCond(args.add(service), service)
	}
	return `SELECT e.i, w.created_at, w.k, w.acknowledged_at, w.res, w.starts_at, w.reopen_count
		FROM unnest(` + args.add(idx) + `::int4[], ` + args.add(lo) + `::timestamptz[], ` + args.add(hi) + `::timestamptz[]) AS e(i, lo, hi)
		CROSS JOIN LATERAL (SELECT created_at, ` + key + ` AS k, acknowledged_at,
			incidents_resolution(status, resolved_at) AS res, starts_at, reopen_count
			FROM incidents WHERE created_at >= e.lo AND created_at < e.hi` + svc + `) w`, args.v
}

// decodeEdgeRows reads the rows of an edgeQuery, calling f with the edge
// index, the creation time, the group key and measures.
func decodeEdgeRows(rows pgx.Rows, slots *slotEdges, f func(k int, created time.Time, key []byte, e *edgeRow)) error {
	defer rows.Close()
	if err := binaryColumns(rows, 7); err != nil {
		return err
	}
	var e edgeRow
	for rows.Next() {
		raw := rows.RawValues()
		if len(raw) != 7 || len(raw[0]) != 4 || len(raw[1]) != 8 || raw[2] == nil || len(raw[6]) != 4 {
			return errMalformedRow
		}
		var ts [4]int64 // created, acknowledged, resolution, start; µs since 2000
		var has [4]bool
		for i, c := range [4][]byte{raw[1], raw[3], raw[4], raw[5]} {
			switch len(c) {
			case 0:
			case 8:
				ts[i], has[i] = int64(binary.BigEndian.Uint64(c)), true
				if ts[i] == math.MaxInt64 || ts[i] == math.MinInt64 {
					// ±infinity: the SQL measures fail on it too.
					return errMalformedRow
				}
			default:
				return errMalformedRow
			}
		}
		if !has[0] {
			return errMalformedRow
		}
		e.measures(ts, has, slots)
		e.reopen = int32(binary.BigEndian.Uint32(raw[6]))
		created := pgEpoch.Add(time.Duration(ts[0]) * time.Microsecond)
		f(int(int32(binary.BigEndian.Uint32(raw[0]))), created, raw[2], &e)
	}
	if err := rows.Err(); err != nil {
		return errAnalytics(err)
	}
	return nil
}

// measures sets e's durations and histogram slots from the raw times, by
// the rules of measureCols and the trigger of migration 0006: a and r from
// the creation, d and rfs from the alert's start, clamped at zero. A
// difference of whole microseconds divided by 10^6 is the float64 nearest
// to the exact epoch, as extract(...)::float8 gives.
func (e *edgeRow) measures(ts [4]int64, has [4]bool, slots *slotEdges) {
	secs := func(to, from int) float64 {
		if !has[to] || !has[from] {
			return math.NaN()
		}
		return float64(ts[to]-ts[from]) / 1e6
	}
	nonneg := func(v float64) float64 {
		if v < 0 {
			return 0
		}
		return v
	}
	e.v = [4]float64{secs(1, 0), secs(2, 0), nonneg(secs(0, 3)), nonneg(secs(2, 3))}
	for i := 0; i < 3; i++ {
		e.slot[i] = slots.slot(e.v[i])
	}
}
