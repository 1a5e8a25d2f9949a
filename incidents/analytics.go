package incidents

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"
)

// Bucket is the size of a trend bucket: a local day, ISO week (from Monday
// 00:00) or month of the query's time zone.
type Bucket string

// The trend bucket sizes.
const (
	BucketDay   Bucket = "day"
	BucketWeek  Bucket = "week"
	BucketMonth Bucket = "month"
)

// The default targets of the within-target shares.
const (
	DefaultAckWithin     = 5 * time.Minute
	DefaultResolveWithin = time.Hour
)

// MaxTrendBuckets is the largest number of buckets a trend may have.
const MaxTrendBuckets = 2000

// MaxTarget is the largest ack_within / resolve_within accepted.
const MaxTarget = 366 * 24 * time.Hour

// Targets whose within-target counts the rollups keep exactly; other
// targets are estimated from the histograms (see the package documentation).
var (
	exactAckTargets     = [4]time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute, time.Hour}
	exactResolveTargets = [4]time.Duration{30 * time.Minute, time.Hour, 4 * time.Hour, 24 * time.Hour}
)

// GroupBy names the dimension of a breakdown or of per-group trends:
// "service", "severity" or "label:KEY" (the value of label KEY; incidents
// without it form the group ""). The empty GroupBy means no grouping.
type GroupBy string

// The fixed dimensions.
const (
	GroupByNone     GroupBy = ""
	GroupByService  GroupBy = "service"
	GroupBySeverity GroupBy = "severity"
)

// GroupByLabel returns the GroupBy of label key.
func GroupByLabel(key string) GroupBy { return GroupBy("label:" + key) }

// Label returns the label key of a "label:KEY" GroupBy.
func (g GroupBy) Label() (string, bool) {
	return strings.CutPrefix(string(g), "label:")
}

func (g GroupBy) validate() error {
	switch g {
	case GroupByNone, GroupByService, GroupBySeverity:
		return nil
	}
	key, ok := g.Label()
	if !ok {
		return invalid("group_by", "must be service, severity or label:KEY")
	}
	if key == "" {
		return invalid("group_by", "label:KEY needs a label name")
	}
	if err := checkText("group_by", key, maxShortLen, true); err != nil {
		return err
	}
	return nil
}

// Targets are the thresholds of the within-target shares. Zero fields take
// [DefaultAckWithin] and [DefaultResolveWithin].
type Targets struct {
	AckWithin     time.Duration
	ResolveWithin time.Duration
}

func (t Targets) withDefaults() (Targets, error) {
	if t.AckWithin == 0 {
		t.AckWithin = DefaultAckWithin
	}
	if t.ResolveWithin == 0 {
		t.ResolveWithin = DefaultResolveWithin
	}
	if t.AckWithin < 0 || t.AckWithin > MaxTarget {
		return t, invalid("ack_within", "must be a positive duration up to %s", MaxTarget)
	}
	if t.ResolveWithin < 0 || t.ResolveWithin > MaxTarget {
		return t, invalid("resolve_within", "must be a positive duration up to %s", MaxTarget)
	}
	return t, nil
}

// TrendsQuery selects a trend. The zero value gives daily buckets in UTC
// over the last 30 days, overall.
type TrendsQuery struct {
	Bucket Bucket // default BucketDay
	// Location is the time zone of the buckets; default UTC.
	Location *time.Location
	// From and To bound the window by creation time. From is moved back to
	// the start of its bucket and To forward to the end of its bucket, so
	// every bucket is whole. Defaults: To now, From 30 days, 12 weeks or 12
	// months before To.
	From, To time.Time
	// Service keeps one service only; GroupBy splits per service or
	// severity (label keys are not supported in trends).
	Service string
	GroupBy GroupBy
	Targets
}

// Measures are the figures of a trend bucket or breakdown group, over the
// incidents created in it (see "Analytics" in the package documentation).
// Pointers are nil (JSON null) when there is nothing to average.
type Measures struct {
	Acknowledged int64 `json:"acknowledged"`
	Resolved     int64 `json:"resolved"`
	// Detected counts alert-backed incidents, the population of MTTD.
	Detected     int64    `json:"detected"`
	AutoResolved int64    `json:"auto_resolved"`
	Reopened     int64    `json:"reopened"`
	MTTA         *float64 `json:"mtta_seconds"`
	MTTR         *float64 `json:"mttr_seconds"`
	MTTD         *float64 `json:"mttd_seconds"`
	// MTTRFromStart is the mean of resolution - the alert's startsAt.
	MTTRFromStart      *float64 `json:"mttr_from_start_seconds"`
	MTTAP50            *float64 `json:"mtta_p50_seconds"`
	MTTAP90            *float64 `json:"mtta_p90_seconds"`
	MTTRP50            *float64 `json:"mttr_p50_seconds"`
	MTTRP90            *float64 `json:"mttr_p90_seconds"`
	MTTDP50            *float64 `json:"mttd_p50_seconds"`
	MTTDP90            *float64 `json:"mttd_p90_seconds"`
	AckRate            *float64 `json:"ack_rate"`
	AckWithinRatio     *float64 `json:"ack_within_ratio"`
	ResolveWithinRatio *float64 `json:"resolve_within_ratio"`
	// Approximate is true when percentiles (and within-target shares for
	// targets the rollups do not count exactly) come from histograms.
	Approximate bool `json:"approximate"`
}

// TrendPoint is one bucket of a trend.
type TrendPoint struct {
	// BucketStart is the bucket's first instant, in the query's zone.
	BucketStart time.Time `json:"bucket_start"`
	Service     string    `json:"service,omitempty"`
	Severity    string    `json:"severity,omitempty"`
	Opened      int64     `json:"opened"`
	Measures
}

// BreakdownQuery selects a breakdown. GroupBy is required.
type BreakdownQuery struct {
	GroupBy GroupBy
	// From and To bound the window by creation time, [From, To); zero
	// means unbounded.
	From, To time.Time
	Service  string
	Targets
	// Sort is one of total (default), key, acknowledged, resolved,
	// auto_resolved, reopened, mtta, mttr, mttd, ack_rate,
	// ack_within_ratio, resolve_within_ratio. Nulls sort last.
	Sort string
	// Ascending reverses the default order (descending, except for key).
	Ascending *bool
	// Limit is the page size, 1..1000 (0: 100); Offset skips rows.
	Limit, Offset int
}

// BreakdownRow is one group of a breakdown.
type BreakdownRow struct {
	Key   string `json:"key"`
	Total int64  `json:"total"`
	Measures
}

// BreakdownPage is one page of a breakdown.
type BreakdownPage struct {
	Rows []BreakdownRow
	// Groups is the number of groups before paging.
	Groups int
	// NextOffset is the offset of the next page, 0 on the last page.
	NextOffset int
}

// acc accumulates the measures of one group (and bucket).
type acc struct {
	total, ackN, resN, detN, rfsN, auto, reopened int64
	ackSum, resSum, detSum, rfsSum                float64
	ackLE, resLE                                  [4]int64
	ackIn, resIn                                  int64 // exact within counts (exact path)
	ackH, resH, detH                              spanHist
	exact                                         *[6]*float64 // a p50, p90, r p50, p90, d p50, p90
}

// measures turns an accumulation into Measures for the given targets.
func (a *acc) measures(t Targets) Measures {
	var f floats
	return a.measuresFrom(t, &f)
}

// measuresFrom is measures with the figures taken from f, so that the
// points of a trend (thousands) share a few allocations.
func (a *acc) measuresFrom(t Targets, f *floats) Measures {
	m := Measures{Acknowledged: a.ackN, Resolved: a.resN, Detected: a.detN, AutoResolved: a.auto, Reopened: a.reopened}
	mean := func(sum float64, n int64) *float64 {
		if n <= 0 {
			return nil
		}
		return f.put(sum / float64(n))
	}
	m.MTTA, m.MTTR, m.MTTD, m.MTTRFromStart = mean(a.ackSum, a.ackN), mean(a.resSum, a.resN), mean(a.detSum, a.detN), mean(a.rfsSum, a.rfsN)
	if a.total > 0 {
		m.AckRate = f.ratio(a.ackN, a.total)
	}
	if a.exact != nil {
		m.MTTAP50, m.MTTAP90, m.MTTRP50, m.MTTRP90, m.MTTDP50, m.MTTDP90 = a.exact[0], a.exact[1], a.exact[2], a.exact[3], a.exact[4], a.exact[5]
		if a.total > 0 {
			m.AckWithinRatio, m.ResolveWithinRatio = f.ratio(a.ackIn, a.total), f.ratio(a.resIn, a.total)
		}
		return m
	}
	m.Approximate = a.ackN > 0 || a.resN > 0 || a.detN > 0
	m.MTTAP50, m.MTTAP90 = f.quantiles(&a.ackH, a.ackN)
	m.MTTRP50, m.MTTRP90 = f.quantiles(&a.resH, a.resN)
	m.MTTDP50, m.MTTDP90 = f.quantiles(&a.detH, a.detN)
	if a.total > 0 {
		m.AckWithinRatio = f.put(withinRatio(t.AckWithin, exactAckTargets, a.ackLE, &a.ackH, a.total))
		m.ResolveWithinRatio = f.put(withinRatio(t.ResolveWithin, exactResolveTargets, a.resLE, &a.resH, a.total))
	}
	return m
}

// floats hands out pointers into blocks of figures: the zero value
// allocates room for one point's figures at a time, reserve for many.
type floats struct{ free []float64 }

// pointFigures is the most figures one set of Measures holds.
const pointFigures = 14

func (f *floats) put(v float64) *float64 {
	if len(f.free) == 0 {
		f.free = make([]float64, pointFigures)
	}
	p := &f.free[0]
	f.free = f.free[1:]
	*p = v
	return p
}

// reserve makes room for the figures of n points in one allocation.
func (f *floats) reserve(n int) {
	if len(f.free) < n*pointFigures {
		f.free = make([]float64, n*pointFigures)
	}
}

func (f *floats) ratio(n, d int64) *float64 { return f.put(float64(n) / float64(d)) }

func (f *floats) quantiles(h *spanHist, n int64) (*float64, *float64) {
	if n <= 0 {
		return nil, nil
	}
	p50, p90 := quantiles(h, n)
	return f.put(p50), f.put(p90)
}

// quantiles estimates p50 and p90 of the n > 0 values of h in one walk
// over the slots: the interpolation of histogram.quantile, for both at once.
func quantiles(h *spanHist, n int64) (float64, float64) {
	var ranks [4]int64
	var pos [2]float64
	for i, q := range [2]float64{0.5, 0.9} {
		pos[i] = q * float64(n-1)
		ranks[2*i], ranks[2*i+1] = int64(math.Floor(pos[i])), int64(math.Ceil(pos[i]))
	}
	var vals [4]float64
	for i := range vals {
		vals[i] = reps[histOverflow]
	}
	// Ranks in ascending order: lo50 <= hi50, lo90 <= hi90, lo50 <= lo90
	// and hi50 <= hi90, so only the middle two can be out of order.
	order := [4]int{0, 1, 2, 3}
	if ranks[2] < ranks[1] {
		order[1], order[2] = 2, 1
	}
	next, seen := 0, int64(0)
	for i, c := range h.c {
		b := h.lo + i
		if b < 1 {
			continue
		}
		seen += c
		for next < 4 && ranks[order[next]] < seen {
			vals[order[next]] = representative(b)
			next++
		}
		if next == 4 {
			break
		}
	}
	var out [2]float64
	for i := range out {
		out[i] = vals[2*i] + (pos[i]-math.Floor(pos[i]))*(vals[2*i+1]-vals[2*i])
	}
	return out[0], out[1]
}

// withinRatio is the share of total whose duration is at most target:
// exact when target is one the rollups count, else estimated from h.
func withinRatio(target time.Duration, exact [4]time.Duration, counts [4]int64, h *spanHist, total int64) float64 {
	for i, e := range exact {
		if e == target {
			return float64(counts[i]) / float64(total)
		}
	}
	return h.countAtMost(target.Seconds()) / float64(total)
}

// slotBounds returns the range [lo, hi) of durations histogram slot b holds.
func slotBounds(b int) (float64, float64) {
	switch {
	case b <= 1:
		return 0, histMin
	case b >= histOverflow:
		return histMin * math.Pow(2, float64(histOverflow-2)/histPerDoubling), math.Inf(1)
	}
	return histMin * math.Pow(2, float64(b-2)/histPerDoubling), histMin * math.Pow(2, float64(b-1)/histPerDoubling)
}

// countAtMost estimates how many values are at most x: whole slots below
// x, and the slot holding x in proportion to the part of it below x. The
// error is at most the count of that one slot.
func (h *spanHist) countAtMost(x float64) float64 {
	var n float64
	for i, c := range h.c {
		b := h.lo + i
		if b < 1 || c == 0 {
			continue
		}
		lo, hi := slotBounds(b)
		switch {
		case hi <= x:
			n += float64(c)
		case lo <= x && !math.IsInf(hi, 1):
			n += float64(c) * (x - lo) / (hi - lo)
		}
	}
	return n
}

// Trends returns one point per bucket (and per group with GroupBy), oldest
// first, grouped by service or severity in name order. Every bucket of the
// window is present, with zero counts and null means when empty; with
// GroupBy, every group that has an incident in the window has every bucket.
func (s *Store) Trends(ctx context.Context, q TrendsQuery) ([]TrendPoint, error) {
	q, err := q.normalize(s.now())
	if err != nil {
		return nil, err
	}
	bounds := bucketBounds(q.Bucket, q.Location, q.From, q.To)
	if len(bounds)-1 > MaxTrendBuckets {
		return nil, invalid("window", "more than %d buckets; use a larger bucket or a shorter window", MaxTrendBuckets)
	}
	plan := rollupPlan{dim: -1, key: q.Service, groupBy: q.GroupBy}
	switch {
	case q.Service != "" && q.GroupBy == GroupBySeverity:
		// No rollup per service and severity: the base table answers.
	case q.GroupBy == GroupByService || q.Service != "":
		plan.dim = 0
	default:
		plan.dim = 1
	}
	var groups map[string][]acc
	// The histograms' counters are garbage once the points are computed.
	sl := newSlab()
	defer sl.release()
	if plan.dim >= 0 {
		if groups, err = s.trendRollup(ctx, plan, q.Bucket, bounds, sl); err != nil {
			return nil, err
		}
	}
	if plan.dim < 0 || (s.exactLimit >= 0 && total(groups) <= int64(s.exactLimit)) {
		if groups, err = s.exactGroups(ctx, q.GroupBy, q.Service, bounds, true, q.Targets); err != nil {
			return nil, err
		}
	}
	return trendPoints(q, bounds, groups), nil
}

func total(groups map[string][]acc) int64 {
	var n int64
	for _, g := range groups {
		for i := range g {
			n += g[i].total
		}
	}
	return n
}

func (q TrendsQuery) normalize(now time.Time) (TrendsQuery, error) {
	if q.Bucket == "" {
		q.Bucket = BucketDay
	}
	if q.Bucket != BucketDay && q.Bucket != BucketWeek && q.Bucket != BucketMonth {
		return q, invalid("bucket", "must be day, week or month")
	}
	if q.Location == nil {
		q.Location = time.UTC
	}
	if err := checkText("service", q.Service, maxShortLen, false); err != nil {
		return q, err
	}
	if _, ok := q.GroupBy.Label(); ok {
		return q, invalid("group_by", "trends group by service or severity; use the breakdown for labels")
	}
	if err := q.GroupBy.validate(); err != nil {
		return q, err
	}
	var err error
	if q.Targets, err = q.Targets.withDefaults(); err != nil {
		return q, err
	}
	if q.To.IsZero() {
		q.To = now
	}
	if q.From.IsZero() {
		switch q.Bucket {
		case BucketDay:
			q.From = q.To.AddDate(0, 0, -30)
		case BucketWeek:
			q.From = q.To.AddDate(0, 0, -12*7)
		default:
			q.From = q.To.AddDate(0, -12, 0)
		}
	}
	if !q.From.Before(q.To) {
		return q, invalid("window", "from must be before to")
	}
	if q.To.Sub(q.From) > 50*366*24*time.Hour {
		return q, invalid("window", "longer than 50 years")
	}
	return q, nil
}

// unitStart is the start of the bucket holding t, in loc.
func unitStart(b Bucket, loc *time.Location, t time.Time) time.Time {
	t = t.In(loc)
	y, m, d := t.Date()
	switch b {
	case BucketWeek:
		wd := (int(t.Weekday()) + 6) % 7 // Monday 0
		return time.Date(y, m, d-wd, 0, 0, 0, 0, loc)
	case BucketMonth:
		return time.Date(y, m, 1, 0, 0, 0, 0, loc)
	}
	return time.Date(y, m, d, 0, 0, 0, 0, loc)
}

func nextUnit(b Bucket, loc *time.Location, start time.Time) time.Time {
	y, m, d := start.In(loc).Date()
	switch b {
	case BucketWeek:
		return time.Date(y, m, d+7, 0, 0, 0, 0, loc)
	case BucketMonth:
		return time.Date(y, m+1, 1, 0, 0, 0, 0, loc)
	}
	return time.Date(y, m, d+1, 0, 0, 0, 0, loc)
}

// bucketBounds returns the bucket starts from the bucket of from up to the
// end of the bucket holding the last instant before to (n buckets, n+1
// bounds).
func bucketBounds(b Bucket, loc *time.Location, from, to time.Time) []time.Time {
	out := []time.Time{unitStart(b, loc, from)}
	for out[len(out)-1].Before(to) && len(out) <= MaxTrendBuckets+1 {
		out = append(out, nextUnit(b, loc, out[len(out)-1]))
	}
	return out
}

// nearestUTCUnit returns the UTC unit boundary of the bucket size nearest to
// t, in days since 1970-01-01.
func nearestUTCUnit(b Bucket, t time.Time) int64 {
	sec := t.Unix()
	switch b {
	case BucketWeek:
		d := floorDiv(sec, 86400)
		mon := d - ((d+3)%7+7)%7
		if sec-mon*86400 > (mon+7)*86400-sec {
			return mon + 7
		}
		return mon
	case BucketMonth:
		u := t.UTC()
		lo := time.Date(u.Year(), u.Month(), 1, 0, 0, 0, 0, time.UTC)
		hi := lo.AddDate(0, 1, 0)
		if t.Sub(lo) > hi.Sub(t) {
			lo = hi
		}
		return floorDiv(lo.Unix(), 86400)
	}
	return floorDiv(sec+43200, 86400)
}

func trendPoints(q TrendsQuery, bounds []time.Time, groups map[string][]acc) []TrendPoint {
	keys := make([]string, 0, len(groups))
	for k, g := range groups {
		if q.GroupBy == GroupByNone || hasIncidents(g) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	n := len(bounds) - 1
	if q.GroupBy == GroupByNone {
		keys = []string{""}
	}
	out := make([]TrendPoint, n*len(keys))
	fill := func(lo, hi int) { // the points of keys[lo:hi]
		var f floats
		f.reserve(n * (hi - lo))
		for ki := lo; ki < hi; ki++ {
			trendRow(q, bounds, keys[ki], groupOf(q, groups, keys[ki], n), out[ki*n:(ki+1)*n], &f)
		}
	}
	// Thousands of points (a trend per service) take milliseconds to
	// compute: halves on two goroutines when there are cores for them.
	if half := len(keys) / 2; len(out) >= parallelPoints && half > 0 && runtime.GOMAXPROCS(0) > 1 {
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); fill(half, len(keys)) }()
		fill(0, half)
		wg.Wait()
	} else {
		fill(0, len(keys))
	}
	return out
}

// parallelPoints is the number of trend points from which trendPoints
// computes them on two goroutines.
const parallelPoints = 1024

// groupOf returns the accumulations of key k: for an overall trend, the
// sum of every group's.
func groupOf(q TrendsQuery, groups map[string][]acc, k string, n int) []acc {
	if q.GroupBy != GroupByNone {
		return groups[k]
	}
	if len(groups) == 1 {
		for _, g := range groups {
			return g
		}
	}
	g := make([]acc, n)
	for _, gg := range groups {
		for i := range gg {
			g[i].add(&gg[i])
		}
	}
	return g
}

// trendRow fills out with the points of key k.
func trendRow(q TrendsQuery, bounds []time.Time, k string, g []acc, out []TrendPoint, f *floats) {
	for i := range out {
		p := TrendPoint{BucketStart: bounds[i].In(q.Location), Opened: g[i].total, Measures: g[i].measuresFrom(q.Targets, f)}
		switch {
		case q.GroupBy == GroupByService:
			p.Service = k
		case q.GroupBy == GroupBySeverity:
			p.Severity, p.Service = k, q.Service
		default:
			p.Service = q.Service
		}
		out[i] = p
	}
}

func hasIncidents(g []acc) bool {
	for i := range g {
		if g[i].total != 0 {
			return true
		}
	}
	return false
}

// add merges o into a (rollup path only: exact results are never merged).
func (a *acc) add(o *acc) {
	a.total += o.total
	a.ackN += o.ackN
	a.resN += o.resN
	a.detN += o.detN
	a.rfsN += o.rfsN
	a.auto += o.auto
	a.reopened += o.reopened
	a.ackSum += o.ackSum
	a.resSum += o.resSum
	a.detSum += o.detSum
	a.rfsSum += o.rfsSum
	a.ackIn += o.ackIn
	a.resIn += o.resIn
	for i := range a.ackLE {
		a.ackLE[i] += o.ackLE[i]
		a.resLE[i] += o.resLE[i]
	}
	a.ackH.add(&o.ackH)
	a.resH.add(&o.resH)
	a.detH.add(&o.detH)
	if o.exact != nil {
		a.exact = o.exact
	}
}

// Breakdown returns the groups of q.GroupBy over the window with their
// measures, sorted and paged.
func (s *Store) Breakdown(ctx context.Context, q BreakdownQuery) (BreakdownPage, error) {
	if q.GroupBy == GroupByNone {
		return BreakdownPage{}, invalid("group_by", "is required: service, severity or label:KEY")
	}
	if err := q.GroupBy.validate(); err != nil {
		return BreakdownPage{}, err
	}
	if err := checkText("service", q.Service, maxShortLen, false); err != nil {
		return BreakdownPage{}, err
	}
	if !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To) {
		return BreakdownPage{}, invalid("window", "from must be before to")
	}
	if q.Limit == 0 {
		q.Limit = 100
	}
	if q.Limit < 1 || q.Limit > MaxDetailsLimit {
		return BreakdownPage{}, invalid("limit", "must be between 1 and %d", MaxDetailsLimit)
	}
	if q.Offset < 0 {
		return BreakdownPage{}, invalid("offset", "must not be negative")
	}
	less, err := breakdownOrder(q.Sort, q.Ascending)
	if err != nil {
		return BreakdownPage{}, err
	}
	if q.Targets, err = q.Targets.withDefaults(); err != nil {
		return BreakdownPage{}, err
	}
	rows, shared, err := s.breakdownRows(ctx, q, less)
	if err != nil {
		return BreakdownPage{}, err
	}
	page := BreakdownPage{Groups: len(rows), Rows: []BreakdownRow{}}
	if q.Offset < len(rows) {
		end := min(len(rows), q.Offset+q.Limit)
		page.Rows = append(make([]BreakdownRow, 0, end-q.Offset), rows[q.Offset:end]...)
		if shared {
			for i := range page.Rows {
				page.Rows[i].Measures = page.Rows[i].Measures.clone()
			}
		}
		if end < len(rows) {
			page.NextOffset = end
		}
	}
	return page, nil
}

// breakdownRows returns every group of a breakdown, sorted. shared means
// the rows are the store's copy (an all-time answer): the caller copies
// what it hands out.
func (s *Store) breakdownRows(ctx context.Context, q BreakdownQuery, less func(a, b *BreakdownRow) bool) ([]BreakdownRow, bool, error) {
	if dim, ok := allTimeDim(q); ok {
		return s.allTimeBreakdown(ctx, dim, q, less)
	}
	groups, err := s.breakdownGroups(ctx, q)
	if err != nil {
		return nil, false, err
	}
	return sortedRows(groups, q.Targets, less), false, nil
}

// sortedRows computes the measures of each group and sorts the groups.
func sortedRows(groups map[string][]acc, t Targets, less func(a, b *BreakdownRow) bool) []BreakdownRow {
	rows := make([]BreakdownRow, 0, len(groups))
	var f floats
	f.reserve(len(groups))
	for k, g := range groups {
		if g[0].total != 0 {
			rows = append(rows, BreakdownRow{Key: k, Total: g[0].total, Measures: g[0].measuresFrom(t, &f)})
		}
	}
	// Sorted by pointer: a row is a few hundred bytes to move.
	order := make([]*BreakdownRow, len(rows))
	for i := range rows {
		order[i] = &rows[i]
	}
	sort.Slice(order, func(i, j int) bool { return less(order[i], order[j]) })
	out := make([]BreakdownRow, len(rows))
	for i, r := range order {
		out[i] = *r
	}
	return out
}

// clone returns m with its figures in new memory.
func (m Measures) clone() Measures {
	var f floats
	for _, p := range m.figures() {
		if *p != nil {
			*p = f.put(**p)
		}
	}
	return m
}

// figures lists the optional figures of m.
func (m *Measures) figures() [13]**float64 {
	return [13]**float64{&m.MTTA, &m.MTTR, &m.MTTD, &m.MTTRFromStart, &m.MTTAP50, &m.MTTAP90,
		&m.MTTRP50, &m.MTTRP90, &m.MTTDP50, &m.MTTDP90, &m.AckRate, &m.AckWithinRatio, &m.ResolveWithinRatio}
}

func (s *Store) breakdownGroups(ctx context.Context, q BreakdownQuery) (map[string][]acc, error) {
	var bounds []time.Time
	if !q.From.IsZero() || !q.To.IsZero() {
		bounds = []time.Time{q.From, q.To}
	}
	rollup := q.Service == "" && (q.GroupBy == GroupByService || q.GroupBy == GroupBySeverity)
	if rollup {
		g, err := s.windowRollup(ctx, q.GroupBy, q.From, q.To)
		if err != nil {
			return nil, err
		}
		if s.exactLimit < 0 || total(g) > int64(s.exactLimit) {
			return g, nil
		}
	}
	return s.exactGroups(ctx, q.GroupBy, q.Service, bounds, false, q.Targets)
}

// breakdownOrder returns the ordering of a breakdown: by the sort field
// (nulls last), then by key.
func breakdownOrder(field string, asc *bool) (func(a, b *BreakdownRow) bool, error) {
	if field == "" {
		field = "total"
	}
	num := map[string]func(r *BreakdownRow) *float64{
		"total":                func(r *BreakdownRow) *float64 { v := float64(r.Total); return &v },
		"acknowledged":         func(r *BreakdownRow) *float64 { v := float64(r.Acknowledged); return &v },
		"resolved":             func(r *BreakdownRow) *float64 { v := float64(r.Resolved); return &v },
		"auto_resolved":        func(r *BreakdownRow) *float64 { v := float64(r.AutoResolved); return &v },
		"reopened":             func(r *BreakdownRow) *float64 { v := float64(r.Reopened); return &v },
		"mtta":                 func(r *BreakdownRow) *float64 { return r.MTTA },
		"mttr":                 func(r *BreakdownRow) *float64 { return r.MTTR },
		"mttd":                 func(r *BreakdownRow) *float64 { return r.MTTD },
		"ack_rate":             func(r *BreakdownRow) *float64 { return r.AckRate },
		"ack_within_ratio":     func(r *BreakdownRow) *float64 { return r.AckWithinRatio },
		"resolve_within_ratio": func(r *BreakdownRow) *float64 { return r.ResolveWithinRatio },
	}
	if field == "key" {
		up := asc == nil || *asc
		return func(a, b *BreakdownRow) bool { return (a.Key < b.Key) == up && a.Key != b.Key }, nil
	}
	get, ok := num[field]
	if !ok {
		return nil, invalid("sort", "must be one of key, total, acknowledged, resolved, auto_resolved, reopened, mtta, mttr, mttd, ack_rate, ack_within_ratio, resolve_within_ratio")
	}
	up := asc != nil && *asc
	return func(a, b *BreakdownRow) bool {
		va, vb := get(a), get(b)
		switch {
		case va == nil && vb == nil:
		case va == nil:
			return false
		case vb == nil:
			return true
		case *va != *vb:
			return (*va < *vb) == up
		}
		return a.Key < b.Key
	}, nil
}

// errAnalytics wraps a database error of the analytics queries.
func errAnalytics(err error) error { return fmt.Errorf("incidents: analytics: %w", classify(err)) }

// NoiseQuery selects the noisiest alert names. The zero value gives the 10
// alert names with the most incidents of all time.
type NoiseQuery struct {
	From, To time.Time
	Service  string
	// Label is the label that names an alert; default "alertname".
	Label string
	// Limit is the number of names, 1..1000; 0 means 10.
	Limit int
}

// NoiseRow is one alert name of [Store.Noise].
type NoiseRow struct {
	AlertName string `json:"alertname"`
	Incidents int64  `json:"incidents"`
	// Share is Incidents over all incidents of the window.
	Share        float64 `json:"share"`
	AutoResolved int64   `json:"auto_resolved"`
	// AutoResolvedRatio is AutoResolved / Incidents: alerts that clear
	// without anyone acknowledging them are the usual noise.
	AutoResolvedRatio float64  `json:"auto_resolved_ratio"`
	Reopened          int64    `json:"reopened"`
	AckRate           *float64 `json:"ack_rate"`
	MTTA              *float64 `json:"mtta_seconds"`
	MTTR              *float64 `json:"mttr_seconds"`
}

// Noise returns the alert names (the value of q.Label, "" for incidents
// without it) with the most incidents in the window, most first: incidents
// per alert name and how many resolved without acknowledgement or were
// reopened.
func (s *Store) Noise(ctx context.Context, q NoiseQuery) ([]NoiseRow, error) {
	if q.Label == "" {
		q.Label = "alertname"
	}
	if q.Limit == 0 {
		q.Limit = 10
	}
	if q.Limit < 1 || q.Limit > MaxDetailsLimit {
		return nil, invalid("limit", "must be between 1 and %d", MaxDetailsLimit)
	}
	page, err := s.Breakdown(ctx, BreakdownQuery{GroupBy: GroupByLabel(q.Label), From: q.From, To: q.To,
		Service: q.Service, Limit: MaxDetailsLimit})
	if err != nil {
		return nil, err
	}
	var all int64
	for _, r := range page.Rows {
		all += r.Total
	}
	out := make([]NoiseRow, 0, min(q.Limit, len(page.Rows)))
	for _, r := range page.Rows[:min(q.Limit, len(page.Rows))] {
		out = append(out, NoiseRow{AlertName: r.Key, Incidents: r.Total, Share: float64(r.Total) / float64(all),
			AutoResolved: r.AutoResolved, AutoResolvedRatio: float64(r.AutoResolved) / float64(r.Total),
			Reopened: r.Reopened, AckRate: r.AckRate, MTTA: r.MTTA, MTTR: r.MTTR})
	}
	return out, nil
}
