package incidents

import (
	"context"
	"encoding/base64"
	"encoding/binary"
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
	// AlertStartsAt and AlertEndsAt are Alertmanager's startsAt and endsAt
	// (its clock) for alert-backed incidents; omitted from the JSON when nil.
	AlertStartsAt *time.Time `json:"alert_starts_at,omitempty"`
	AlertEndsAt   *time.Time `json:"alert_ends_at,omitempty"`
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
	if err != nil || !decimal(us) {
		return cursor{}, invalid("cursor", "malformed")
	}
	// Any time PostgreSQL can hold (rows written before schema version 5
	// may lie outside years 1-9999); beyond that the cursor is forged.
	if n < pgMinMicros || n > pgMaxMicros {
		return cursor{}, invalid("cursor", "time out of range")
	}
	uid, err := ParseID(id)
	if err != nil {
		return cursor{}, invalid("cursor", "malformed")
	}
	return cursor{at: time.UnixMicro(n), id: uid}, nil
}

// validate checks q and applies its defaults.
func (q *DetailsQuery) validate() error {
	if q.Limit == 0 {
		q.Limit = 100
	}
	if q.Limit < 1 || q.Limit > MaxDetailsLimit {
		return invalid("limit", "must be between 1 and %d", MaxDetailsLimit)
	}
	if q.Status != "" && !q.Status.valid() {
		return invalid("status", "must be one of open, acknowledged, resolved, closed")
	}
	if err := checkText("service", q.Service, maxShortLen, false); err != nil {
		return err
	}
	if err := checkText("severity", q.Severity, maxShortLen, false); err != nil {
		return err
	}
	if q.Severity != "" {
		sev, ok := normalizeSeverity(q.Severity)
		if !ok {
			return invalid("severity", "%q is not one of %s", truncate(q.Severity, 40), strings.Join(Severities, ", "))
		}
		q.Severity = sev
	}
	return nil
}

// Details returns incidents newest first (by created_at, then id) with their
// time to acknowledge and resolve, excluding closed incidents unless q.Status
// asks for them. Pages are keyset-paginated through an opaque cursor, so a
// page costs the same however deep it is.
func (s *Store) Details(ctx context.Context, q DetailsQuery) (DetailsPage, error) {
	if err := q.validate(); err != nil {
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
		where = append(where, serviceCond(arg(q.Service), q.Service))
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
	sql := `SELECT id::text, title, severity, incidents_service(source), status, created_at, acknowledged_at,
		incidents_resolution(status, resolved_at), starts_at, alert_ends_at FROM incidents WHERE ` + strings.Join(where, " AND ") +
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
	if err := r.Scan(&d.ID, &d.Title, &d.Severity, &d.Source, &status, &d.CreatedAt, &d.AcknowledgedAt, &d.ResolvedAt,
		&d.AlertStartsAt, &d.AlertEndsAt); err != nil {
		return d, err
	}
	d.Status = Status(status)
	d.CreatedAt = d.CreatedAt.UTC()
	utcPtr(d.AcknowledgedAt)
	utcPtr(d.ResolvedAt)
	utcPtr(d.AlertStartsAt)
	utcPtr(d.AlertEndsAt)
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
// One statement answers it from a single snapshot: whole UTC days come from
// the trigger-maintained day rollup (all time from the service rollup), and
// the partial days at the window's edges from the base table through a
// covering index on created_at. Counts and means are therefore exact.
// Percentiles are exact (percentile_cont) when the window holds at most
// Options.ExactPercentileLimit incidents — then a second statement computes
// the whole answer from the base table — and otherwise come from
// log-bucketed histograms with the error bound of [PercentileRelativeError].
func (s *Store) Stats(ctx context.Context, q StatsQuery) (Stats, error) {
	if err := checkText("service", q.Service, maxShortLen, false); err != nil {
		return Stats{}, err
	}
	for _, b := range []struct {
		name string
		t    time.Time
	}{{"from", q.From}, {"to", q.To}} {
		if !b.t.IsZero() && !timeInRange(b.t) {
			return Stats{}, invalid(b.name, "must be in years 1 to 9999 (UTC)")
		}
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
	sql, args := rollupStatsSQL(q)
	if err := s.readStatsRows(ctx, sql, args, get); err != nil {
		return Stats{}, err
	}
	var total int64
	for _, a := range per {
		total += a.total
	}
	var exact map[string]exactStats
	if s.exactLimit >= 0 && total <= int64(s.exactLimit) {
		var err error
		if exact, err = s.exactStats(ctx, q); err != nil {
			return Stats{}, err
		}
		// The exact statement saw its own snapshot: it replaces the counts.
		per = map[string]*agg{}
		for src, e := range exact {
			if src != "" {
				a := e.agg
				per[src] = &a
			}
		}
	} else {
		out.ApproximatePercentiles = true
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
	build := func(name string, a *agg, ex *exactStats) ServiceStats {
		st := ServiceStats{
			Service: name, Incidents: a.total, Open: a.open, Acknowledged: a.ackSt,
			Resolved: a.resolved, Closed: a.closed, StillOpen: a.open + a.ackSt,
			Unacknowledged: a.total - a.ackN,
		}
		if a.total > 0 {
			r := float64(a.ackN) / float64(a.total)
			st.AckRate = &r
		}
		if a.ackN > 0 {
			d := &Durations{Count: a.ackN, Mean: a.ackSum / float64(a.ackN)}
			if ex != nil {
				d.P50, d.P90, d.P99 = ex.ackP[0], ex.ackP[1], ex.ackP[2]
			} else {
				d.P50, d.P90, d.P99 = a.ackHist.quantile(0.5, a.ackN), a.ackHist.quantile(0.9, a.ackN), a.ackHist.quantile(0.99, a.ackN)
			}
			st.MTTA = d
		}
		if a.resN > 0 {
			d := &Durations{Count: a.resN, Mean: a.resSum / float64(a.resN)}
			if ex != nil {
				d.P50, d.P90, d.P99 = ex.resP[0], ex.resP[1], ex.resP[2]
			} else {
				d.P50, d.P90, d.P99 = a.resHist.quantile(0.5, a.resN), a.resHist.quantile(0.9, a.resN), a.resHist.quantile(0.99, a.resN)
			}
			st.MTTR = d
		}
		return st
	}
	exactFor := func(name string) *exactStats {
		if exact == nil {
			return nil
		}
		if e, ok := exact[name]; ok {
			return &e
		}
		return nil
	}
	for _, n := range names {
		out.Services = append(out.Services, build(n, per[n], exactFor(n)))
	}
	if exact != nil {
		// Overall sums and means come from the same statement as its
		// percentiles.
		if e, ok := exact[""]; ok {
			overall = e.agg
		}
	}
	out.Overall = build("", &overall, exactFor(""))
	return out, nil
}

// The range of times PostgreSQL's timestamptz holds is 4714-11-24 BC to
// 294276-12-31 AD. In microseconds since the Unix epoch (a cursor's form)
// its lower end is pgMinMicros; its upper end lies beyond the largest int64,
// so every larger cursor value is one PostgreSQL holds.
var (
	pgMinMicros = time.Date(-4713, 11, 24, 0, 0, 0, 0, time.UTC).UnixMicro()
	pgMaxMicros = int64(math.MaxInt64)
)

// The range of times this package writes and accepts as input (schema
// version 5's check): years 1 to 9999 UTC, [minTime, maxTime).
var (
	minTime = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
)

func timeInRange(t time.Time) bool { return !t.Before(minTime) && t.Before(maxTime) }

// decimal reports whether s is an optionally signed run of ASCII digits,
// at most 19 of them: what a decimal int64 looks like, without the "+",
// hex, exponents or underscores other parsers accept.
func decimal(s string) bool {
	s = strings.TrimPrefix(s, "-")
	if s == "" || len(s) > 19 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func ceilDiv(a, b int64) int64 { return -floorDiv(-a, b) }

// Columns of every row rollupStatsSQL returns: source, counters, the two
// histogram columns (rollup rows) or two slots (base-table rows).
const (
	rollupCols = `source, total, open_n, ack_status, resolved_n, closed_n,
		ack_n, ack_sum::float8, res_n, res_sum::float8, ack_hist, res_hist, 0, 0`
	baseCols = `source, count(*), count(*) FILTER (WHERE status = 'open'),
		count(*) FILTER (WHERE status = 'acknowledged'), count(*) FILTER (WHERE status = 'resolved'),
		count(*) FILTER (WHERE status = 'closed'),
		count(a), coalesce(sum(a), 0), count(r), coalesce(sum(r), 0), NULL::bytea, NULL::bytea, ab, rb`
)

// rollupStatsSQL builds the one statement that reads a window: rollup rows
// for whole days (or the service rollup for all time) and base-table rows,
// grouped by histogram slot, for the partial days at the edges. The text is
// assembled from constant fragments; values are parameters.
func rollupStatsSQL(q StatsQuery) (string, []any) {
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	svc, baseSvc := "", ""
	if q.Service != "" {
		p := arg(q.Service)
		svc, baseSvc = " AND source = "+p, " AND "+serviceCond(p, q.Service)
	}
	if q.From.IsZero() && q.To.IsZero() {
		return "SELECT " + rollupCols + " FROM incident_rollup_service WHERE total > 0" + svc, args
	}
	// Whole days [fromDay, toDay) from the day rollup.
	var fromDay, toDay *int64
	if !q.From.IsZero() {
		d := ceilDiv(q.From.Unix(), 86400)
		if q.From.Unix()%86400 == 0 && q.From.Nanosecond() != 0 {
			d++ // a sub-second offset past midnight leaves that day partial
		}
		fromDay = &d
	}
	if !q.To.IsZero() {
		d := floorDiv(q.To.Unix(), 86400)
		toDay = &d
	}
	// One branch per range (not OR): each stays an index-only scan.
	base := func(ranges []string) string {
		branches := make([]string, len(ranges))
		for i, r := range ranges {
			branches[i] = `SELECT incidents_service(source) AS source, status,
			       extract(epoch FROM acknowledged_at - created_at)::float8 AS a,
			       extract(epoch FROM incidents_resolution(status, resolved_at) - created_at)::float8 AS r
			FROM incidents WHERE ` + r + baseSvc
		}
		return `SELECT ` + baseCols + ` FROM (
			SELECT source, status, a, r, incidents_duration_bucket(a) AS ab, incidents_duration_bucket(r) AS rb
			FROM (` + strings.Join(branches, " UNION ALL ") + `) u) w
			GROUP BY source, ab, rb`
	}
	rng := func(from, to *time.Time) string {
		var c []string
		if from != nil {
			c = append(c, "created_at >= "+arg(*from))
		}
		if to != nil {
			c = append(c, "created_at < "+arg(*to))
		}
		return "(" + strings.Join(c, " AND ") + ")"
	}
	ptr := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		return &t
	}
	if fromDay != nil && toDay != nil && *fromDay >= *toDay {
		// No whole day inside: the base table answers alone.
		return base([]string{rng(ptr(q.From), ptr(q.To))}), args
	}
	var days []string
	if fromDay != nil {
		days = append(days, "day >= "+arg(*fromDay))
	}
	if toDay != nil {
		days = append(days, "day < "+arg(*toDay))
	}
	sql := "SELECT " + rollupCols + " FROM incident_rollup_day WHERE total > 0 AND " + strings.Join(days, " AND ") + svc
	var edges []string
	if fromDay != nil {
		e := time.Unix(*fromDay*86400, 0)
		edges = append(edges, rng(ptr(q.From), &e))
	}
	if toDay != nil {
		e := time.Unix(*toDay*86400, 0)
		edges = append(edges, rng(&e, ptr(q.To)))
	}
	return sql + " UNION ALL " + base(edges), args
}

// readStatsRows runs a rollupStatsSQL statement and adds its rows into
// per-service aggregates. Rows are decoded by hand from the raw column
// bytes (binary format, or text with default_query_exec_mode=exec or
// simple_protocol): a window reads thousands of them, and the generic scan
// path would cost more than the query.
func (s *Store) readStatsRows(ctx context.Context, sql string, args []any, get func(string) *agg) error {
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return fmt.Errorf("incidents: stats: %w", classify(err))
	}
	defer rows.Close()
	fds := rows.FieldDescriptions()
	if len(fds) != 14 {
		return fmt.Errorf("incidents: stats: unexpected %d columns", len(fds))
	}
	// Binary unless the pool's default_query_exec_mode is exec or
	// simple_protocol (as behind PgBouncer), which bring text.
	bin := fds[1].Format == pgx.BinaryFormatCode
	for _, fd := range fds[1:] {
		if (fd.Format == pgx.BinaryFormatCode) != bin {
			return fmt.Errorf("incidents: stats: mixed column formats")
		}
	}
	errMalformed := errors.New("incidents: stats: malformed row")
	i8 := func(b []byte) (int64, bool) {
		if !bin {
			n, err := strconv.ParseInt(string(b), 10, 64)
			return n, err == nil
		}
		if len(b) != 8 {
			return 0, false
		}
		return int64(binary.BigEndian.Uint64(b)), true
	}
	f8 := func(b []byte) (float64, bool) {
		if !bin {
			f, err := strconv.ParseFloat(string(b), 64)
			return f, err == nil
		}
		if len(b) != 8 {
			return 0, false
		}
		return math.Float64frombits(binary.BigEndian.Uint64(b)), true
	}
	i4 := func(b []byte) (int, bool) {
		if !bin {
			n, err := strconv.ParseInt(string(b), 10, 32)
			return int(n), err == nil
		}
		if len(b) != 4 {
			return 0, false
		}
		return int(int32(binary.BigEndian.Uint32(b))), true
	}
	for rows.Next() {
		raw := rows.RawValues()
		if len(raw) != 14 || raw[0] == nil {
			return errMalformed
		}
		var (
			c  [9]int64
			ok = true
		)
		for i, col := range []int{1, 2, 3, 4, 5, 6, 8} {
			var good bool
			c[i], good = i8(raw[col])
			ok = ok && good
		}
		ackSum, g1 := f8(raw[7])
		resSum, g2 := f8(raw[9])
		ab, g3 := i4(raw[12])
		rb, g4 := i4(raw[13])
		if !ok || !g1 || !g2 || !g3 || !g4 {
			return errMalformed
		}
		a := get(string(raw[0]))
		if err := a.ackHist.addRaw(raw[10], bin); err != nil {
			return err
		}
		if err := a.resHist.addRaw(raw[11], bin); err != nil {
			return err
		}
		total, open, ackSt, resolved, closed, ackN, resN := c[0], c[1], c[2], c[3], c[4], c[5], c[6]
		if ab > 0 && ab < histSlots {
			a.ackHist[ab] += ackN
		}
		if rb > 0 && rb < histSlots {
			a.resHist[rb] += resN
		}
		a.total += total
		a.open += open
		a.ackSt += ackSt
		a.resolved += resolved
		a.closed += closed
		a.ackN += ackN
		a.resN += resN
		a.ackSum += ackSum
		a.resSum += resSum
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
		where = append(where, serviceCond(arg(service), service))
	}
	return strings.Join(where, " AND "), args
}

// exactStats is the base-table answer for one service (or overall, key "").
type exactStats struct {
	agg
	ackP, resP [3]float64
}

// exactStats computes counts, sums and percentile_cont over the base table
// for the window, per service and overall, in one statement.
func (s *Store) exactStats(ctx context.Context, q StatsQuery) (map[string]exactStats, error) {
	where, args := windowWhere(q.From, q.To, q.Service)
	rows, err := s.pool.Query(ctx, `SELECT coalesce(svc, ''), grouping(svc) = 1, count(*),
		count(*) FILTER (WHERE status = 'open'), count(*) FILTER (WHERE status = 'acknowledged'),
		count(*) FILTER (WHERE status = 'resolved'), count(*) FILTER (WHERE status = 'closed'),
		count(a), coalesce(sum(a), 0), count(r), coalesce(sum(r), 0),
		percentile_cont(ARRAY[0.5, 0.9, 0.99]) WITHIN GROUP (ORDER BY a),
		percentile_cont(ARRAY[0.5, 0.9, 0.99]) WITHIN GROUP (ORDER BY r)
		FROM (SELECT incidents_service(source) AS svc, status,
		             extract(epoch FROM acknowledged_at - created_at)::float8 AS a,
		             extract(epoch FROM incidents_resolution(status, resolved_at) - created_at)::float8 AS r
		      FROM incidents WHERE `+where+`) w
		GROUP BY GROUPING SETS ((svc), ())`, args...)
	if err != nil {
		return nil, fmt.Errorf("incidents: stats: %w", classify(err))
	}
	defer rows.Close()
	out := map[string]exactStats{}
	for rows.Next() {
		var (
			src     string
			overall bool
			e       exactStats
			ap, rp  []*float64
		)
		if err := rows.Scan(&src, &overall, &e.total, &e.open, &e.ackSt, &e.resolved, &e.closed,
			&e.ackN, &e.ackSum, &e.resN, &e.resSum, &ap, &rp); err != nil {
			return nil, fmt.Errorf("incidents: stats: %w", classify(err))
		}
		for i := 0; i < 3; i++ {
			if i < len(ap) && ap[i] != nil {
				e.ackP[i] = *ap[i]
			}
			if i < len(rp) && rp[i] != nil {
				e.resP[i] = *rp[i]
			}
		}
		if overall {
			src = ""
		}
		out[src] = e
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("incidents: stats: %w", classify(err))
	}
	return out, nil
}
