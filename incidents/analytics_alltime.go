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
type allTimeCache struct {
	mu  sync.Mutex
	dim [2]map[string]*allTimeRow
}

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
	CASE WHEN c.x = r.xmin::text::int8 AND c.t = r.total THEN NULL ELSE r.packed END
FROM incident_rollup_analytics r
LEFT JOIN unnest($2::text[], $3::int8[], $4::int8[]) AS c(key, x, t) ON c.key = r.key
WHERE r.grain = 0 AND r.dim = $1 AND r.total <> 0`

// allTimeRollup answers an all-time breakdown by service (dim 0) or
// severity (dim 1) from the rollup rows, through the cache.
func (s *Store) allTimeRollup(ctx context.Context, dim int) (map[string][]acc, error) {
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
		return nil, errAnalytics(err)
	}
	next, err := readAllTimeRows(rows, held)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]acc, len(next))
	accs := make([]acc, len(next))
	i := 0
	for k, r := range next {
		accs[i] = r.a
		out[k] = accs[i : i+1 : i+1]
		i++
	}
	if len(next) > allTimeCacheMaxRows {
		next = nil
	}
	c.mu.Lock()
	c.dim[dim] = next
	c.mu.Unlock()
	return out, nil
}

// readAllTimeRows decodes the rows of allTimeSQL, taking the rows the
// server did not send from held.
func readAllTimeRows(rows pgx.Rows, held map[string]*allTimeRow) (map[string]*allTimeRow, error) {
	defer rows.Close()
	if err := binaryColumns(rows, 4); err != nil {
		return nil, err
	}
	next := make(map[string]*allTimeRow, len(held))
	sl := new(slab)
	var rr rollupRow
	for rows.Next() {
		raw := rows.RawValues()
		if len(raw) != 4 || raw[0] == nil || len(raw[1]) != 8 || len(raw[2]) != 8 {
			return nil, errMalformedRow
		}
		key := string(raw[0])
		xmin, total := int64(binary.BigEndian.Uint64(raw[1])), int64(binary.BigEndian.Uint64(raw[2]))
		r := held[key]
		switch {
		case raw[3] == nil && (r == nil || r.xmin != xmin || r.total != total):
			return nil, errMalformedRow
		case raw[3] != nil:
			if err := rr.decodePacked(raw[3]); err != nil {
				return nil, err
			}
			r = &allTimeRow{xmin: xmin, total: total}
			rr.addTo(&r.a, sl)
		}
		if _, dup := next[key]; dup {
			return nil, errMalformedRow
		}
		next[key] = r
	}
	if err := rows.Err(); err != nil {
		return nil, errAnalytics(err)
	}
	return next, nil
}
