package incidents

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// NewAnalyticsHandler returns the analytics routes of the store, with full
// paths (NewHandler mounts them too):
//
//	GET /api/metrics/incidents/trends?bucket=day|week|month&tz=&from=&to=&service=&group_by=service|severity&ack_within=&resolve_within=
//	GET /api/metrics/incidents/breakdown?group_by=service|severity|label:KEY&from=&to=&service=&ack_within=&resolve_within=&sort=&order=asc|desc&limit=&cursor=
//	GET /api/metrics/incidents/noise?from=&to=&service=&label=alertname&limit=
//
// Answers are {"status":"success","data":[...]} (the breakdown adds
// next_cursor when more groups follow), or CSV with format=csv or
// Accept: text/csv: a header of the JSON field names, then one record per
// element, null as an empty field. from and to are RFC 3339 times; tz an
// IANA zone name (default UTC); ack_within and resolve_within Go durations
// (5m, 1h30m) or seconds. Unknown or repeated parameters and bad values get
// 400 with a message naming the parameter.
func NewAnalyticsHandler(s *Store, opts HandlerOptions) http.Handler {
	if opts.Logger == nil {
		opts.Logger = s.log
	}
	h := &handler{s: s, opts: opts}
	mux := http.NewServeMux()
	mountAnalytics(mux, h)
	return mux
}

func mountAnalytics(mux *http.ServeMux, h *handler) {
	mux.HandleFunc("/api/metrics/incidents/trends", h.method(http.MethodGet, h.trends))
	mux.HandleFunc("/api/metrics/incidents/breakdown", h.method(http.MethodGet, h.breakdown))
	mux.HandleFunc("/api/metrics/incidents/noise", h.method(http.MethodGet, h.noise))
}

// params reads a query string strictly: only the allowed names, each at
// most once.
type params struct {
	v   url.Values
	err string
}

func parseParams(r *http.Request, allowed ...string) params {
	qv, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return params{err: "malformed query string"}
	}
	for k, vs := range qv {
		ok := false
		for _, a := range allowed {
			ok = ok || a == k
		}
		if !ok {
			return params{err: "unknown parameter " + strconv.Quote(truncate(k, 64)) + ": use " + strings.Join(allowed, ", ")}
		}
		if len(vs) > 1 {
			return params{err: "parameter " + k + " given more than once"}
		}
	}
	return params{v: qv}
}

func (p *params) fail(name, msg string) {
	if p.err == "" {
		p.err = "invalid " + name + ": " + msg
	}
}

func (p *params) str(name string) string { return p.v.Get(name) }

func (p *params) time(name string) time.Time {
	v := p.v.Get(name)
	if v == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, strings.ReplaceAll(v, " ", "+"))
	if err != nil {
		p.fail(name, "want an RFC 3339 time such as 2026-01-02T15:04:05Z")
	}
	return t
}

func (p *params) duration(name string) time.Duration {
	v := p.v.Get(name)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseFloat(v, 64); err == nil && n > 0 && n <= MaxTarget.Seconds() {
		return time.Duration(n * float64(time.Second))
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 || d > MaxTarget {
		p.fail(name, "want a positive duration such as 5m, 1h30m or 300 (seconds), at most "+MaxTarget.String())
	}
	return d
}

func (p *params) int(name string, lo, hi int) int {
	v := p.v.Get(name)
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		p.fail(name, "must be an integer between "+strconv.Itoa(lo)+" and "+strconv.Itoa(hi))
	}
	return n
}

func (p *params) location(name string) *time.Location {
	v := p.v.Get(name)
	if v == "" || v == "UTC" {
		return time.UTC
	}
	if len(v) > 64 || v == "Local" || strings.HasPrefix(v, "/") || strings.Contains(v, "..") {
		p.fail(name, "want an IANA time zone name such as Europe/Paris")
		return time.UTC
	}
	loc, err := time.LoadLocation(v)
	if err != nil {
		p.fail(name, "unknown time zone "+strconv.Quote(truncate(v, 64))+"; want an IANA name such as Europe/Paris")
		return time.UTC
	}
	return loc
}

// wantsCSV says whether the client asked for CSV (format=csv, or an Accept
// header naming text/csv before application/json).
func wantsCSV(r *http.Request, format string) bool {
	if format != "" {
		return format == "csv"
	}
	acc := r.Header.Get("Accept")
	c, j := strings.Index(acc, "text/csv"), strings.Index(acc, "application/json")
	return c >= 0 && (j < 0 || c < j)
}

func (p *params) format() string {
	f := p.v.Get("format")
	if f != "" && f != "csv" && f != "json" {
		p.fail("format", "must be json or csv")
	}
	return f
}

var analyticsCommon = []string{"from", "to", "service", "ack_within", "resolve_within", "format"}

func (h *handler) trends(w http.ResponseWriter, r *http.Request) {
	p := parseParams(r, append([]string{"bucket", "tz", "group_by"}, analyticsCommon...)...)
	if p.err != "" {
		writeError(w, http.StatusBadRequest, p.err)
		return
	}
	q := TrendsQuery{Bucket: Bucket(p.str("bucket")), Location: p.location("tz"), From: p.time("from"), To: p.time("to"),
		Service: p.str("service"), GroupBy: GroupBy(p.str("group_by")),
		Targets: Targets{AckWithin: p.duration("ack_within"), ResolveWithin: p.duration("resolve_within")}}
	format := p.format()
	if p.err != "" {
		writeError(w, http.StatusBadRequest, p.err)
		return
	}
	out, err := h.s.Trends(r.Context(), q)
	if err != nil {
		fail(w, h.opts.Logger, r, err)
		return
	}
	h.answer(w, r, format, "trends", out, "")
}

func (h *handler) breakdown(w http.ResponseWriter, r *http.Request) {
	p := parseParams(r, append([]string{"group_by", "sort", "order", "limit", "cursor"}, analyticsCommon...)...)
	if p.err != "" {
		writeError(w, http.StatusBadRequest, p.err)
		return
	}
	q := BreakdownQuery{GroupBy: GroupBy(p.str("group_by")), From: p.time("from"), To: p.time("to"), Service: p.str("service"),
		Targets: Targets{AckWithin: p.duration("ack_within"), ResolveWithin: p.duration("resolve_within")},
		Sort:    p.str("sort"), Limit: p.int("limit", 1, MaxDetailsLimit), Offset: p.int("cursor", 0, math32)}
	switch p.str("order") {
	case "":
	case "asc", "desc":
		asc := p.str("order") == "asc"
		q.Ascending = &asc
	default:
		p.fail("order", "must be asc or desc")
	}
	format := p.format()
	if p.err != "" {
		writeError(w, http.StatusBadRequest, p.err)
		return
	}
	page, err := h.s.Breakdown(r.Context(), q)
	if err != nil {
		fail(w, h.opts.Logger, r, err)
		return
	}
	next := ""
	if page.NextOffset > 0 {
		next = strconv.Itoa(page.NextOffset)
	}
	h.answer(w, r, format, "breakdown", page.Rows, next)
}

const math32 = 1<<31 - 1

func (h *handler) noise(w http.ResponseWriter, r *http.Request) {
	p := parseParams(r, "from", "to", "service", "label", "limit", "format")
	if p.err != "" {
		writeError(w, http.StatusBadRequest, p.err)
		return
	}
	q := NoiseQuery{From: p.time("from"), To: p.time("to"), Service: p.str("service"), Label: p.str("label"),
		Limit: p.int("limit", 1, MaxDetailsLimit)}
	format := p.format()
	if p.err != "" {
		writeError(w, http.StatusBadRequest, p.err)
		return
	}
	out, err := h.s.Noise(r.Context(), q)
	if err != nil {
		fail(w, h.opts.Logger, r, err)
		return
	}
	h.answer(w, r, format, "noise", out, "")
}

// answer writes rows (a slice) as the JSON envelope or as CSV.
func (h *handler) answer(w http.ResponseWriter, r *http.Request, format, name string, rows any, next string) {
	if !wantsCSV(r, format) {
		writeJSON(w, http.StatusOK, envelope{Status: "success", Data: rows, NextCursor: next})
		return
	}
	v := reflect.ValueOf(rows)
	cw := newCSVStream(w, name, v.Type().Elem())
	if next != "" {
		w.Header().Set("X-Next-Cursor", next)
	}
	for i := 0; i < v.Len(); i++ {
		if err := cw.write(v.Index(i).Interface()); err != nil {
			h.opts.Logger.Warn("incidents: csv export stopped", "path", r.URL.Path, "err", err)
			return
		}
	}
	if err := cw.close(); err != nil {
		h.opts.Logger.Warn("incidents: csv export stopped", "path", r.URL.Path, "err", err)
	}
}

// csvStream writes records of one type as CSV: the header is the type's
// JSON field names, each record the element's JSON encoding field by field
// (strings unquoted, null empty, numbers and booleans as JSON writes them),
// so a CSV parsed back equals the JSON. It flushes every 256 records.
type csvStream struct {
	w    http.ResponseWriter
	cw   *csv.Writer
	cols []string
	n    int
	rec  []string
}

func newCSVStream(w http.ResponseWriter, name string, t reflect.Type) *csvStream {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.csv"`)
	s := &csvStream{w: w, cw: csv.NewWriter(w), cols: jsonColumns(t)}
	_ = s.cw.Write(s.cols)
	return s
}

func (s *csvStream) write(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	s.rec = s.rec[:0]
	for _, c := range s.cols {
		s.rec = append(s.rec, csvCell(m[c]))
	}
	if err := s.cw.Write(s.rec); err != nil {
		return err
	}
	if s.n++; s.n%256 == 0 {
		return s.flush()
	}
	return nil
}

func (s *csvStream) flush() error {
	s.cw.Flush()
	if err := s.cw.Error(); err != nil {
		return err
	}
	if err := http.NewResponseController(s.w).Flush(); err != nil && err != http.ErrNotSupported {
		return err
	}
	return nil
}

func (s *csvStream) close() error { return s.flush() }

func csvCell(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return ""
	case raw[0] == '"':
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
	}
	return string(raw)
}

// jsonColumns lists the JSON field names of a struct type in order,
// embedded structs inlined.
func jsonColumns(t reflect.Type) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var out []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			out = append(out, jsonColumns(f.Type)...)
			continue
		}
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, name)
	}
	return out
}

// detailsCSV streams the details matching the details route's filters as
// CSV: every matching incident (from cursor, at most limit if given), read
// page by page.
func (h *handler) detailsCSV(w http.ResponseWriter, r *http.Request) {
	p := parseParams(r, "service", "status", "severity", "limit", "cursor", "format")
	if p.err != "" {
		writeError(w, http.StatusBadRequest, p.err)
		return
	}
	q := DetailsQuery{Service: p.str("service"), Status: Status(p.str("status")), Severity: p.str("severity"), Cursor: p.str("cursor")}
	max := p.int("limit", 1, math32)
	if p.format(); p.err != "" {
		writeError(w, http.StatusBadRequest, p.err)
		return
	}
	q.Limit = MaxDetailsLimit
	if max > 0 && max < q.Limit {
		q.Limit = max
	}
	// The first page is read before anything is written, so that bad
	// input or an unavailable database still get a JSON error.
	page, err := h.s.Details(r.Context(), q)
	if err != nil {
		fail(w, h.opts.Logger, r, err)
		return
	}
	cw := newCSVStream(w, "details", reflect.TypeFor[Detail]())
	sent := 0
	for {
		for _, d := range page.Items {
			if err := cw.write(d); err != nil {
				h.opts.Logger.Warn("incidents: csv export stopped", "path", r.URL.Path, "err", err)
				return
			}
			sent++
		}
		if page.NextCursor == "" || (max > 0 && sent >= max) {
			break
		}
		q.Cursor = page.NextCursor
		if max > 0 {
			q.Limit = min(MaxDetailsLimit, max-sent)
		}
		if page, err = h.s.Details(r.Context(), q); err != nil {
			h.opts.Logger.Warn("incidents: csv export stopped", "path", r.URL.Path, "err", err)
			return
		}
	}
	if err := cw.close(); err != nil {
		h.opts.Logger.Warn("incidents: csv export stopped", "path", r.URL.Path, "err", err)
	}
}

// csvOr serves CSV through c when the request asks for it, else f.
func csvOr(c, f http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		qv, _ := url.ParseQuery(r.URL.RawQuery)
		if wantsCSV(r, qv.Get("format")) {
			c(w, r)
			return
		}
		f(w, r)
	}
}
