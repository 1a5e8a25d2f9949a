package incidents

import (
	"context"
	"encoding/binary"
	"sync"

	"github.com/jackc/pgx/v5"
)

// allTimeCache holds, per dimension, the all-time rollup rows as last
// read: each row's accumulation, with the version (xmin) and total of the
// row it was decoded from. A read sends the versions it holds and the
// server sends the packed column only for rows whose version differs, so an
// answer equals a full read of the same snapshot while moving only the rows
// that changed since the last one. See docs/design.md, "Analytics reads".
//
// Besides, the cache keeps the rollup's version (incident_rollup_version,
// migration 0009) read in the same snapshot as those rows, and the sorted
// answers computed from them: while the version is the same, no rollup row
// has changed, and a breakdown is answered from its copy after reading that
// one row.
type allTimeCache struct {
	mu      sync.Mutex
	dim     [2]map[string]*allTimeRow
	ver     [2]int64 // 0: unknown
	answers [2]map[answerKey][]BreakdownRow
}

// answerKey says what an all-time answer was computed for.
type answerKey struct {
	t    Targets
	sort string
	asc  int8 // -1 default, 0 descending, 1 ascending
}

// allTimeAnswerRows bounds the rows of the answers kept per dimension.
const allTimeAnswerRows = 16384

type allTimeRow struct {
	xmin, total int64
	a           acc
}

// allTimeCacheMaxRows bounds the rows kept per dimension (one per service
// or severity); above it every read is a full read.
const allTimeCacheMaxRows = 4096

// allTimeSQL reads grain 0 (all time) of one dimension: key, version,
// total, and packed unless the caller's copy ($2, $3, $4: keys, versions,
// totals) is current. xmin changes with every new version of a row, and a
// rebuilt row is a new row; the total is checked besides.
const allTimeSQL = `SELECT r.key, r.xmin::text::int8, r.total,
	CASE WHEN c.x = r.xmin::text::int8 AND c.t = r.total THEN NULL ELSE r.packed END,
	(SELECT v FROM incident_rollup_version WHERE id = 0)
FROM incident_rollup_analytics r
LEFT JOIN unnest($2::text[], $3::int8[], $4::int8[]) AS c(key, x, t) ON c.key = r.key
WHERE r.grain = 0 AND r.dim = $1 AND r.total <> 0`

// allTimeVersionSQL reads the rollup's version.
const allTimeVersionSQL = `SELECT v FROM incident_rollup_version WHERE id = 0`

// allTimeDim says whether q is an all-time breakdown that the rollup
// answers, and its dimension.
func allTimeDim(q BreakdownQuery) (int, bool) {
	if q.Service != "" || !q.From.IsZero() || !q.To.IsZero() {
		return 0, false
	}
	switch q.GroupBy {
	case GroupByService:
		return 0, true
	case GroupBySeverity:
		return 1, true
	}
	return 0, false
}

// allTimeBreakdown returns the sorted rows of an all-time breakdown: the
// store's copy when the rollup's version is the one it was computed at.
func (s *Store) allTimeBreakdown(ctx context.Context, dim int, q BreakdownQuery, less func(a, b *BreakdownRow) bool) ([]BreakdownRow, bool, error) {
	key := answerKey{t: q.Targets, sort: q.Sort, asc: -1}
	if q.Ascending != nil {
		key.asc = map[bool]int8{false: 0, true: 1}[*q.Ascending]
	}
	c := &s.allTime
	c.mu.Lock()
	ver, ans, held := c.ver[dim], c.answers[dim][key], c.dim[dim]
	c.mu.Unlock()
	var groups map[string][]acc
	if ver != 0 {
		var cur int64
		if err := s.pool.QueryRow(ctx, allTimeVersionSQL).Scan(&cur); err != nil {
			return nil, false, errAnalytics(err)
		}
		if cur == ver && ans != nil {
			return ans, true, nil
		}
		if cur == ver {
			groups = groupsOf(held)
		}
	}
	if groups == nil {
		var err error
		if groups, ver, err = s.allTimeRollup(ctx, dim); err != nil {
			return nil, false, err
		}
	}
	if s.exactLimit >= 0 && total(groups) <= int64(s.exactLimit) {
		groups, err := s.exactGroups(ctx, q.GroupBy, "", nil, false, q.Targets)
		if err != nil {
			return nil, false, err
		}
		return sortedRows(groups, q.Targets, less), false, nil
	}
	rows := sortedRows(groups, q.Targets, less)
	c.mu.Lock()
	defer c.mu.Unlock()
	if ver == 0 || c.ver[dim] != ver {
		return rows, false, nil
	}
	if c.answers[dim] == nil || (len(c.answers[dim])+1)*max(1, len(rows)) > allTimeAnswerRows {
		c.answers[dim] = map[answerKey][]BreakdownRow{}
	}
	c.answers[dim][key] = rows
	return rows, true, nil
}

// allTimeRollup answers an all-time breakdown by service (dim 0) or
// severity (dim 1) from the rollup rows, through the cache, with the
// rollup's version in the same snapshot (0 when there are no rows).
func (s *Store) allTimeRollup(ctx context.Context, dim int) (map[string][]acc, int64, error) {
	c := &s.allTime
	c.mu.Lock()
	held := c.dim[dim]
	c.mu.Unlock()
	keys := make([]string, 0, len(held))
	xs := make([]int64, 0, len(held))
	ts := make([]int64, 0, len(held))
	for k, r := range held {
		keys, xs, ts = append(keys, k), append(xs, r.xmin), append(ts, r.total)
	}
	rows, err := s.pool.Query(ctx, allTimeSQL, dim, keys, xs, ts)
	if err != nil {
		return nil, 0, errAnalytics(err)
	}
	next, ver, err := readAllTimeRows(rows, held)
	if err != nil {
		return nil, 0, err
	}
	out := groupsOf(next)
	if len(next) > allTimeCacheMaxRows {
		next, ver = nil, 0
	}
	c.mu.Lock()
	c.dim[dim] = next
	if c.ver[dim] != ver {
		c.ver[dim], c.answers[dim] = ver, nil
	}
	c.mu.Unlock()
	return out, ver, nil
}

// groupsOf returns the accumulations of rows as one-bucket groups (their
// histograms shared with rows, which nothing changes).
func groupsOf(rows map[string]*allTimeRow) map[string][]acc {
	out := make(map[string][]acc, len(rows))
	accs := make([]acc, len(rows))
	i := 0
	for k, r := range rows {
		accs[i] = r.a
		out[k] = accs[i : i+1 : i+1]
		i++
	}
	return out
}

// readAllTimeRows decodes the rows of allTimeSQL, taking the rows the
// server did not send from held.
func readAllTimeRows(rows pgx.Rows, held map[string]*allTimeRow) (map[string]*allTimeRow, int64, error) {
	defer rows.Close()
	if err := binaryColumns(rows, 5); err != nil {
		return nil, 0, err
	}
	var ver int64
	next := make(map[string]*allTimeRow, len(held))
	sl := new(slab)
	var rr rollupRow
	for rows.Next() {
		raw := rows.RawValues()
		if len(raw) != 5 || raw[0] == nil || len(raw[1]) != 8 || len(raw[2]) != 8 || len(raw[4]) != 8 {
			return nil, 0, errMalformedRow
		}
		ver = int64(binary.BigEndian.Uint64(raw[4]))
		key := string(raw[0])
		xmin, total := int64(binary.BigEndian.Uint64(raw[1])), int64(binary.BigEndian.Uint64(raw[2]))
		r := held[key]
		switch {
		case raw[3] == nil && (r == nil || r.xmin != xmin || r.total != total):
			return nil, 0, errMalformedRow
		case raw[3] != nil:
			if err := rr.decodePacked(raw[3]); err != nil {
				return nil, 0, err
			}
			r = &allTimeRow{xmin: xmin, total: total}
			rr.addTo(&r.a, sl)
		}
		if _, dup := next[key]; dup {
			return nil, 0, errMalformedRow
		}
		next[key] = r
	}
	if err := rows.Err(); err != nil {
		return nil, 0, errAnalytics(err)
	}
	return next, ver, nil
}
