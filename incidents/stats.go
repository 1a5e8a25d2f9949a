package incidents

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// ServiceCounts is one row of [Store.ByService], in the seed's JSON shape.
type ServiceCounts struct {
	Service string `json:"service"`
	// Total counts every incident of the service, closed ones included.
	Total        int64 `json:"total_incidents"`
	Open         int64 `json:"open_count"`
	Acknowledged int64 `json:"ack_count"` // status acknowledged now
	Resolved     int64 `json:"resolved_count"`
}

// ByService returns incident counts per service (source) and current
// status, busiest service first. It reads the trigger-maintained rollup, so
// its cost grows with the number of services, not incidents.
func (s *Store) ByService(ctx context.Context) ([]ServiceCounts, error) {
	rows, err := s.pool.Query(ctx, `SELECT source, total, open_n, ack_status, resolved_n
		FROM incident_rollup_service WHERE total > 0 ORDER BY total DESC, source`)
	if err != nil {
		return nil, fmt.Errorf("incidents: by service: %w", classify(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ServiceCounts, error) {
		var c ServiceCounts
		err := r.Scan(&c.Service, &c.Total, &c.Open, &c.Acknowledged, &c.Resolved)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("incidents: by service: %w", classify(err))
	}
	if out == nil {
		out = []ServiceCounts{}
	}
	return out, nil
}

// Detail is one row of [Store.Details], in the seed's JSON shape.
type Detail struct {
	ID             string     `json:"id"`
	Title          string     `json:"title"`
	Severity       string     `json:"severity"`
	Source         string     `json:"source"`
	Status         Status     `json:"status"`
	CreatedAt      time.Time  `json:"created_at"`
	AcknowledgedAt *time.Time `json:"acknowledged_at"`
	ResolvedAt     *time.Time `json:"resolved_at"`
	// MTTASeconds is acknowledged_at - created_at, nil if never acknowledged.
	MTTASeconds *float64 `json:"mtta_seconds"`
	// MTTRSeconds is resolved_at - created_at, nil if not resolved.
	MTTRSeconds *float64 `json:"mttr_seconds"`
}

// DetailsQuery filters and pages [Store.Details]. The zero value gives the
// 100 newest incidents that are not closed.
type DetailsQuery struct {
	Service  string // only this source
	Status   Status // only this status; StatusClosed is the only way to see closed ones
	Severity string
	// Limit is the page size, 1..1000; 0 means 100.
	Limit int
	// Cursor is the NextCursor of the previous page; empty for the first.
	Cursor string
}

// DetailsPage is one page of details, newest first.
type DetailsPage struct {
	Items []Detail
	// NextCursor continues after the last item; empty on the last page.
	NextCursor string
}

// MaxDetailsLimit is the largest page [Store.Details] returns.
const MaxDetailsLimit = 1000

type cursor struct {
	at time.Time
	id string
}

func encodeCursor(c cursor) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.at.UnixMicro(), 10) + "," + c.id))
}

func decodeCursor(s string) (cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(s) > 200 {
		return cursor{}, invalid("cursor", "malformed")
	}
	us, id, ok := strings.Cut(string(b), ",")
	if !ok {
		return cursor{}, invalid("cursor", "malformed")
	}
	n, err := strconv.ParseInt(us, 10, 64)
	if err != nil {
		return cursor{}, invalid("cursor", "malformed")
	}
	uid, err := ParseID(id)
	if err != nil {
		return cursor{}, invalid("cursor", "malformed")
	}
	return cursor{at: time.UnixMicro(n), id: uid}, nil
}

// Details returns incidents newest first (by created_at, then id) with their
// time to acknowledge and resolve, excluding closed incidents unless q.Status
// asks for them. Pages are keyset-paginated through an opaque cursor, so a
// page costs the same however deep it is.
func (s *Store) Details(ctx context.Context, q DetailsQuery) (DetailsPage, error) {
	if q.Limit == 0 {
		q.Limit = 100
	}
	if q.Limit < 1 || q.Limit > MaxDetailsLimit {
		return DetailsPage{}, invalid("limit", "must be between 1 and %d", MaxDetailsLimit)
	}
	if q.Status != "" && !q.Status.valid() {
		return DetailsPage{}, invalid("status", "must be one of open, acknowledged, resolved, closed")
	}
	if err := checkText("service", q.Service, maxShortLen, false); err != nil {
		return DetailsPage{}, err
	}
	if err := checkText("severity", q.Severity, maxShortLen, false); err != nil {
		return DetailsPage{}, err
	}
	// The SQL text is assembled from constant fragments only; every value
	// travels as a parameter.
	var (
		where []string
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if q.Status == "" {
		where = append(where, "status <> 'closed'")
	} else {
		where = append(where, "status = "+arg(string(q.Status)))
	}
	if q.Service != "" {
		where = append(where, "source = "+arg(q.Service))
	}
	if q.Severity != "" {
		where = append(where, "severity = "+arg(q.Severity))
	}
	if q.Cursor != "" {
		c, err := decodeCursor(q.Cursor)
		if err != nil {
			return DetailsPage{}, err
		}
		where = append(where, "(created_at, id) < ("+arg(c.at)+", "+arg(c.id)+"::uuid)")
	}
	sql := `SELECT id::text, title, severity, source, status, created_at, acknowledged_at, resolved_at
		FROM incidents WHERE ` + strings.Join(where, " AND ") +
		" ORDER BY created_at DESC, id DESC LIMIT " + arg(q.Limit+1)
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return DetailsPage{}, fmt.Errorf("incidents: details: %w", classify(err))
	}
	items, err := pgx.CollectRows(rows, scanDetail)
	if err != nil {
		return DetailsPage{}, fmt.Errorf("incidents: details: %w", classify(err))
	}
	page := DetailsPage{Items: items}
	if len(items) > q.Limit {
		page.Items = items[:q.Limit]
		last := page.Items[len(page.Items)-1]
		page.NextCursor = encodeCursor(cursor{at: last.CreatedAt, id: last.ID})
	}
	if page.Items == nil {
		page.Items = []Detail{}
	}
	return page, nil
}

func scanDetail(r pgx.CollectableRow) (Detail, error) {
	var (
		d      Detail
		status string
	)
	if err := r.Scan(&d.ID, &d.Title, &d.Severity, &d.Source, &status, &d.CreatedAt, &d.AcknowledgedAt, &d.ResolvedAt); err != nil {
		return d, err
	}
	d.Status = Status(status)
	d.CreatedAt = d.CreatedAt.UTC()
	utcPtr(d.AcknowledgedAt)
	utcPtr(d.ResolvedAt)
	d.MTTASeconds = secondsSince(d.CreatedAt, d.AcknowledgedAt)
	d.MTTRSeconds = secondsSince(d.CreatedAt, d.ResolvedAt)
	return d, nil
}

func secondsSince(from time.Time, to *time.Time) *float64 {
	if to == nil {
		return nil
	}
	v := to.Sub(from).Seconds()
	return &v
}

// StatsQuery selects the incidents [Store.Stats] summarises: those created
// in [From, To), optionally of one service. A zero From or To leaves that
// side of the window open; both zero means all time.
type StatsQuery struct {
	From, To time.Time
	Service  string
}

// Durations summarises the times to acknowledge (or resolve) of a set of
// incidents, in seconds.
type Durations struct {
	// Count is how many incidents had the duration (were acknowledged,
	// respectively resolved).
	Count int64   `json:"count"`
	Mean  float64 `json:"mean_seconds"`
	P50   float64 `json:"p50_seconds"`
	P90   float64 `json:"p90_seconds"`
	P99   float64 `json:"p99_seconds"`
}

// ServiceStats are the counts and MTTA/MTTR of one service, or of all of
// them (Service empty).
type ServiceStats struct {
	Service   string `json:"service,omitempty"`
	Incidents int64  `json:"incidents"`
	// Counts by current status.
	Open         int64 `json:"open_count"`
	Acknowledged int64 `json:"ack_count"`
	Resolved     int64 `json:"resolved_count"`
	Closed       int64 `json:"closed_count"`
	// StillOpen counts incidents not yet resolved (open or acknowledged).
	StillOpen int64 `json:"still_open"`
	// Unacknowledged counts incidents never acknowledged; they are left out
	// of MTTA.
	Unacknowledged int64 `json:"unacknowledged"`
	// AckRate is the share of incidents ever acknowledged, nil without
	// incidents.
	AckRate *float64 `json:"ack_rate"`
	// MTTA and MTTR are nil when no incident was acknowledged (resolved).
	MTTA *Durations `json:"mtta"`
	MTTR *Durations `json:"mttr"`
}

// Stats is the answer of [Store.Stats].
type Stats struct {
	From    *time.Time `json:"from"`
	To      *time.Time `json:"to"`
	Service string     `json:"service,omitempty"`
	// ApproximatePercentiles tells whether p50/p90/p99 come from the rollup
	// histograms (within [PercentileRelativeError]) rather than the exact
	// percentile_cont over the base table. Means and counts are always exact.
	ApproximatePercentiles bool           `json:"approximate_percentiles"`
	Overall                ServiceStats   `json:"overall"`
	Services               []ServiceStats `json:"services"`
}

// agg accumulates rollup rows and base-table rows of one service.
type agg struct {
	total, open, ackSt, resolved, closed int64
	ackN, resN                           int64
	ackSum, resSum                       float64
	ackHist, resHist                     histogram
}

func (a *agg) add(o *agg) {
	a.total += o.total
	a.open += o.open
	a.ackSt += o.ackSt
	a.resolved += o.resolved
	a.closed += o.closed
	a.ackN += o.ackN
	a.resN += o.resN
	a.ackSum += o.ackSum
	a.resSum += o.resSum
	a.ackHist.add(&o.ackHist)
	a.resHist.add(&o.resHist)
}

// Stats computes counts, ack rate and MTTA/MTTR (mean, p50, p90, p99) per
// service and overall for the incidents created in the query's window.
//
// Whole UTC days come from the trigger-maintained day rollup and the all-time
// question from the service rollup; the partial days at the window's edges
// are read from the base table through the created_at index. Counts and
// means are therefore exact. Percentiles are exact (percentile_cont) when
// the window holds at most Options.ExactPercentileLimit incidents, and
// otherwise come from log-bucketed histograms with the error bound of
// [PercentileRelativeError].
func (s *Store) Stats(ctx context.Context, q StatsQuery) (Stats, error) {
	if err := checkText("service", q.Service, maxShortLen, false); err != nil {
		return Stats{}, err
	}
	if !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To) {
		return Stats{}, invalid("window", "from must be before to")
	}
	out := Stats{Service: q.Service, Services: []ServiceStats{}}
	if !q.From.IsZero() {
		f := q.From.UTC()
		out.From = &f
	}
	if !q.To.IsZero() {
		t := q.To.UTC()
		out.To = &t
	}
	per := map[string]*agg{}
	get := func(src string) *agg {
		a := per[src]
		if a == nil {
			a = &agg{}
			per[src] = a
		}
		return a
	}
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return Stats{}, fmt.Errorf("incidents: stats: %w", classify(err))
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()

	if q.From.IsZero() && q.To.IsZero() {
		if err := s.readRollup(ctx, tx, get, "incident_rollup_service", nil, nil, q.Service); err != nil {
			return Stats{}, err
		}
	} else {
		// Whole days [fromDay, toDay) from the rollup, the rest from the base table.
		var fromDay, toDay *int64
		if !q.From.IsZero() {
			d := ceilDiv(q.From.Unix(), 86400)
			if q.From.Unix()%86400 == 0 && q.From.Nanosecond() != 0 {
				d++ // a sub-second offset past midnight still leaves that day partial
			}
			fromDay = &d
		}
		if !q.To.IsZero() {
			d := floorDiv(q.To.Unix(), 86400)
			toDay = &d
		}
		if fromDay != nil && toDay != nil && *fromDay >= *toDay {
			// No whole day inside: the base table answers alone.
			if err := s.readBase(ctx, tx, get, q.From, q.To, q.Service); err != nil {
				return Stats{}, err
			}
		} else {
			if err := s.readRollup(ctx, tx, get, "incident_rollup_day", fromDay, toDay, q.Service); err != nil {
				return Stats{}, err
			}
			if fromDay != nil {
				if err := s.readBase(ctx, tx, get, q.From, time.Unix(*fromDay*86400, 0), q.Service); err != nil {
					return Stats{}, err
				}
			}
			if toDay != nil {
				if err := s.readBase(ctx, tx, get, time.Unix(*toDay*86400, 0), q.To, q.Service); err != nil {
					return Stats{}, err
				}
			}
		}
	}

	var overall agg
	names := make([]string, 0, len(per))
	for src, a := range per {
		if a.total == 0 {
			continue
		}
		names = append(names, src)
		overall.add(a)
	}
	sort.Strings(names)

	var exact map[string][2][3]float64
	if s.exactLimit >= 0 && overall.total <= int64(s.exactLimit) {
		if exact, err = s.exactPercentiles(ctx, tx, q); err != nil {
			return Stats{}, err
		}
	} else {
		out.ApproximatePercentiles = true
	}
	build := func(name string, a *agg) ServiceStats {
		st := ServiceStats{
			Service: name, Incidents: a.total, Open: a.open, Acknowledged: a.ackSt,
			Resolved: a.resolved, Closed: a.closed, StillOpen: a.open + a.ackSt,
			Unacknowledged: a.total - a.ackN,
		}
		if a.total > 0 {
			r := float64(a.ackN) / float64(a.total)
			st.AckRate = &r
		}
		ex, haveExact := exact[name]
		if a.ackN > 0 {
			d := &Durations{Count: a.ackN, Mean: a.ackSum / float64(a.ackN)}
			if haveExact {
				d.P50, d.P90, d.P99 = ex[0][0], ex[0][1], ex[0][2]
			} else {
				d.P50, d.P90, d.P99 = a.ackHist.quantile(0.5, a.ackN), a.ackHist.quantile(0.9, a.ackN), a.ackHist.quantile(0.99, a.ackN)
			}
			st.MTTA = d
		}
		if a.resN > 0 {
			d := &Durations{Count: a.resN, Mean: a.resSum / float64(a.resN)}
			if haveExact {
				d.P50, d.P90, d.P99 = ex[1][0], ex[1][1], ex[1][2]
			} else {
				d.P50, d.P90, d.P99 = a.resHist.quantile(0.5, a.resN), a.resHist.quantile(0.9, a.resN), a.resHist.quantile(0.99, a.resN)
			}
			st.MTTR = d
		}
		return st
	}
	for _, n := range names {
		out.Services = append(out.Services, build(n, per[n]))
	}
	out.Overall = build("", &overall)
	return out, nil
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func ceilDiv(a, b int64) int64 { return -floorDiv(-a, b) }

// readRollup adds rollup rows (all of incident_rollup_service, or the days
// [fromDay, toDay) of incident_rollup_day) into per-service aggregates.
func (s *Store) readRollup(ctx context.Context, tx pgx.Tx, get func(string) *agg, table string, fromDay, toDay *int64, service string) error {
	var (
		where = []string{"total > 0"}
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if fromDay != nil {
		where = append(where, "day >= "+arg(*fromDay))
	}
	if toDay != nil {
		where = append(where, "day < "+arg(*toDay))
	}
	if service != "" {
		where = append(where, "source = "+arg(service))
	}
	// table is one of two constants chosen by the caller.
	rows, err := tx.Query(ctx, `SELECT source, total, open_n, ack_status, resolved_n, closed_n,
		ack_n, ack_sum::float8, res_n, res_sum::float8, ack_hist, res_hist
		FROM `+table+` WHERE `+strings.Join(where, " AND "), args...)
	if err != nil {
		return fmt.Errorf("incidents: stats: %w", classify(err))
	}
	defer rows.Close()
	fds := rows.FieldDescriptions()
	ackBin, resBin := fds[10].Format == pgx.BinaryFormatCode, fds[11].Format == pgx.BinaryFormatCode
	for rows.Next() {
		var (
			src string
			r   agg
		)
		// Scan the counters; the histograms are parsed from the raw bytes,
		// which is much cheaper than a generic array decode.
		raw := rows.RawValues()
		if err := rows.Scan(&src, &r.total, &r.open, &r.ackSt, &r.resolved, &r.closed,
			&r.ackN, &r.ackSum, &r.resN, &r.resSum, nil, nil); err != nil {
			return fmt.Errorf("incidents: stats: %w", classify(err))
		}
		a := get(src)
		if err := a.ackHist.addRaw(raw[10], ackBin); err != nil {
			return err
		}
		if err := a.resHist.addRaw(raw[11], resBin); err != nil {
			return err
		}
		a.total += r.total
		a.open += r.open
		a.ackSt += r.ackSt
		a.resolved += r.resolved
		a.closed += r.closed
		a.ackN += r.ackN
		a.resN += r.resN
		a.ackSum += r.ackSum
		a.resSum += r.resSum
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("incidents: stats: %w", classify(err))
	}
	return nil
}

// readBase adds the incidents created in [from, to) (either side may be
// zero: open) from the base table, grouped in SQL by status and bucket.
func (s *Store) readBase(ctx context.Context, tx pgx.Tx, get func(string) *agg, from, to time.Time, service string) error {
	where, args := windowWhere(from, to, service)
	rows, err := tx.Query(ctx, `WITH w AS (
			SELECT source, status,
			       extract(epoch FROM acknowledged_at - created_at)::float8 AS a,
			       extract(epoch FROM resolved_at - created_at)::float8 AS r
			FROM incidents WHERE `+where+`)
		SELECT source, status, incidents_duration_bucket(a), incidents_duration_bucket(r),
		       count(*), count(a), coalesce(sum(a), 0), count(r), coalesce(sum(r), 0)
		FROM w GROUP BY 1, 2, 3, 4`, args...)
	if err != nil {
		return fmt.Errorf("incidents: stats: %w", classify(err))
	}
	defer rows.Close()
	for rows.Next() {
		var (
			src, status string
			ab, rb      int32
			n, an, rn   int64
			asum, rsum  float64
		)
		if err := rows.Scan(&src, &status, &ab, &rb, &n, &an, &asum, &rn, &rsum); err != nil {
			return fmt.Errorf("incidents: stats: %w", classify(err))
		}
		a := get(src)
		a.total += n
		switch Status(status) {
		case StatusOpen:
			a.open += n
		case StatusAcknowledged:
			a.ackSt += n
		case StatusResolved:
			a.resolved += n
		case StatusClosed:
			a.closed += n
		}
		a.ackN += an
		a.ackSum += asum
		a.resN += rn
		a.resSum += rsum
		if an > 0 && ab > 0 && ab < histSlots {
			a.ackHist[ab] += an
		}
		if rn > 0 && rb > 0 && rb < histSlots {
			a.resHist[rb] += rn
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("incidents: stats: %w", classify(err))
	}
	return nil
}

func windowWhere(from, to time.Time, service string) (string, []any) {
	where := []string{"true"}
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if !from.IsZero() {
		where = append(where, "created_at >= "+arg(from))
	}
	if !to.IsZero() {
		where = append(where, "created_at < "+arg(to))
	}
	if service != "" {
		where = append(where, "source = "+arg(service))
	}
	return strings.Join(where, " AND "), args
}

// exactPercentiles computes percentile_cont over the base table for the
// window, per service and overall (key ""): [ack|res][p50,p90,p99].
func (s *Store) exactPercentiles(ctx context.Context, tx pgx.Tx, q StatsQuery) (map[string][2][3]float64, error) {
	where, args := windowWhere(q.From, q.To, q.Service)
	rows, err := tx.Query(ctx, `SELECT coalesce(source, ''), grouping(source) = 1,
		percentile_cont(ARRAY[0.5, 0.9, 0.99]) WITHIN GROUP (ORDER BY extract(epoch FROM acknowledged_at - created_at)::float8),
		percentile_cont(ARRAY[0.5, 0.9, 0.99]) WITHIN GROUP (ORDER BY extract(epoch FROM resolved_at - created_at)::float8)
		FROM incidents WHERE `+where+` GROUP BY GROUPING SETS ((source), ())`, args...)
	if err != nil {
		return nil, fmt.Errorf("incidents: stats: %w", classify(err))
	}
	defer rows.Close()
	out := map[string][2][3]float64{}
	for rows.Next() {
		var (
			src     string
			overall bool
			ap, rp  []*float64
		)
		if err := rows.Scan(&src, &overall, &ap, &rp); err != nil {
			return nil, fmt.Errorf("incidents: stats: %w", classify(err))
		}
		var v [2][3]float64
		for i := 0; i < 3; i++ {
			v[0][i], v[1][i] = math.NaN(), math.NaN()
			if i < len(ap) && ap[i] != nil {
				v[0][i] = *ap[i]
			}
			if i < len(rp) && rp[i] != nil {
				v[1][i] = *rp[i]
			}
		}
		if overall {
			src = ""
		}
		out[src] = v
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("incidents: stats: %w", classify(err))
	}
	if _, ok := out[""]; !ok {
		return nil, errors.New("incidents: stats: no overall percentile row")
	}
	return out, nil
}
