package incidents

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// HandlerOptions configures [NewHandler]. The zero value works.
type HandlerOptions struct {
	// Logger receives server-side failures (5xx); default the store's logger.
	Logger *slog.Logger
	// MaxBodyBytes limits JSON request bodies of the write routes; default
	// 1 MiB. Larger bodies get 413.
	MaxBodyBytes int64
	// Intake configures POST /api/alertmanager/webhook.
	Intake IntakeOptions
	// ReadOnly serves reads only: the write routes (POST /api/incidents,
	// the lifecycle actions and the webhook) answer 503 with
	// {"status":"error","error":"read-only: ..."} without touching the
	// database. Set it when [Writable] says the role cannot write.
	ReadOnly bool
}

// readOnlyMessage is the 503 answer of a write route in read-only mode.
const readOnlyMessage = "read-only: this service's database role can only read incidents, so writes are refused; reads still work"

// refusedWriteMessage is the 503 answer of a write the database refused for
// lack of privileges (a read-only role or database not configured as such).
const refusedWriteMessage = "read-only: the database refused the write (the role may not write, or the database is read-only); reads still work"

// NewHandler returns the REST API of the store, with full paths, so it can be
// mounted on any mux (for example mux.Handle("/api/", h)):
//
//	GET  /api/metrics/incidents/by-service
//	GET  /api/metrics/incidents/details?service=&status=&severity=&limit=&cursor=
//	GET  /api/metrics/incidents/stats?from=&to=&service=
//	POST /api/incidents
//	GET  /api/incidents/{id}
//	POST /api/incidents/{id}/acknowledge | /resolve | /reopen | /close
//	POST /api/alertmanager/webhook
//
// Success bodies are {"status":"success","data":...}; errors are
// {"status":"error","error":"..."} with 400 (bad input), 404, 405, 409 (wrong
// state), 413, 503 (database unavailable, or a write in read-only mode or
// refused by the database: the error then starts with "read-only:") or 500.
// Error texts never contain SQL. Times are in [TimeLayout].
//
// Input is checked before anything is read or written, and refused with 400
// and a message naming the problem: JSON bodies must be valid UTF-8 without
// NUL characters (\u0000) or lone UTF-16 surrogates (\ud800 alone), hold one
// JSON value and nothing after it, and stay within MaxBodyBytes (else 413);
// query parameters must be valid UTF-8 without NUL, limit a decimal integer
// 1..1000 (no sign, hex or exponent), from and to RFC 3339 times in years 1
// to 9999 (to=0001-01-01T00:00:00Z, the zero time, is refused: leave the
// parameter out for an open window), severity one of [Severities], status
// one of the four statuses, ids UUIDs. A refused request changes nothing.
func NewHandler(s *Store, opts HandlerOptions) http.Handler {
	if opts.Logger == nil {
		opts.Logger = s.log
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 1 << 20
	}
	intake := opts.Intake.withDefaults()
	intake.ReadOnly = intake.ReadOnly || opts.ReadOnly
	h := &handler{s: s, opts: opts, webhook: &webhookHandler{s: s, opts: intake, log: opts.Logger}}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/metrics/incidents/by-service", h.method(http.MethodGet, h.byService))
	mux.HandleFunc("/api/metrics/incidents/details", h.method(http.MethodGet, csvOr(h.detailsCSV, h.details)))
	mux.HandleFunc("/api/metrics/incidents/stats", h.method(http.MethodGet, h.stats))
	mountAnalytics(mux, h) // trends, breakdown, noise: analytics_http.go
	mux.HandleFunc("/api/incidents", h.method(http.MethodPost, h.write(h.create)))
	mux.HandleFunc("/api/incidents/{id}", h.method(http.MethodGet, h.get))
	mux.HandleFunc("/api/incidents/{id}/{action}", h.method(http.MethodPost, h.write(h.action)))
	mux.Handle("/api/alertmanager/webhook", h.webhook)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such route: "+truncate(r.URL.Path, 200))
	})
	return mux
}

// Handler is NewHandler(s, HandlerOptions{}).
func (s *Store) Handler() http.Handler { return NewHandler(s, HandlerOptions{}) }

// NewWebhookHandler returns an http.Handler for Alertmanager's webhook
// receiver (POST, payload version 4) that calls [Store.Ingest]. It answers
// {"status":"success","data":{"opened":1,"resolved":0,"ignored":0}}, or with
// opts.ReadOnly 503 {"status":"error","error":"read-only: ..."} (Alertmanager
// retries a 5xx, so alerts sent while read-only are not lost if a writable
// instance takes over).
func NewWebhookHandler(s *Store, opts IntakeOptions) http.Handler {
	return &webhookHandler{s: s, opts: opts.withDefaults(), log: s.log}
}

type handler struct {
	s       *Store
	opts    HandlerOptions
	webhook *webhookHandler
}

func (h *handler) method(m string, f http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != m && !(m == http.MethodGet && r.Method == http.MethodHead) {
			w.Header().Set("Allow", m)
			writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed, use "+m)
			return
		}
		f(w, r)
	}
}

// write guards a write route: in read-only mode it answers 503.
func (h *handler) write(f http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if h.opts.ReadOnly {
			writeError(w, http.StatusServiceUnavailable, readOnlyMessage)
			return
		}
		f(w, r)
	}
}

type envelope struct {
	Status     string `json:"status"`
	Data       any    `json:"data,omitempty"`
	NextCursor string `json:"next_cursor,omitempty"`
	Error      string `json:"error,omitempty"`
}

func writeJSON(w http.ResponseWriter, code int, v envelope) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		code = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"status":"error","error":"internal error"}` + "\n")
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, envelope{Status: "error", Error: msg})
}

// fail maps err to a status code and a message that never carries SQL.
func fail(w http.ResponseWriter, log *slog.Logger, r *http.Request, err error) {
	var (
		se *StateError
		ve *ValidationError
	)
	switch {
	case errors.As(err, &ve):
		writeError(w, http.StatusBadRequest, strings.TrimPrefix(ve.Error(), "incidents: "))
	case errors.As(err, &se):
		writeError(w, http.StatusConflict, strings.TrimPrefix(se.Error(), "incidents: "))
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, "incident not found")
	case errors.Is(err, ErrReadOnly):
		log.Warn("incidents: write refused by the database", "method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, http.StatusServiceUnavailable, refusedWriteMessage)
	case errors.Is(err, ErrUnavailable), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		log.Warn("incidents: database unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, http.StatusServiceUnavailable, "database unavailable")
	default:
		log.Error("incidents: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInternalServerError, "internal error")
	}
}

func (h *handler) byService(w http.ResponseWriter, r *http.Request) {
	out, err := h.s.ByService(r.Context())
	if err != nil {
		fail(w, h.opts.Logger, r, err)
		return
	}
	writeJSON(w, http.StatusOK, envelope{Status: "success", Data: out})
}

// query parses the query string strictly: a malformed one is a 400, not a
// silently dropped parameter.
func query(w http.ResponseWriter, r *http.Request) (url.Values, bool) {
	qv, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		writeError(w, http.StatusBadRequest, "malformed query string")
		return nil, false
	}
	for k, vs := range qv {
		for _, v := range append([]string{k}, vs...) {
			if err := cleanText("", v); err != nil {
				writeError(w, http.StatusBadRequest, "invalid query parameter "+strconv.Quote(truncate(k, 40))+": "+err.(*ValidationError).Reason)
				return nil, false
			}
		}
	}
	return qv, true
}

func (h *handler) details(w http.ResponseWriter, r *http.Request) {
	qv, ok := query(w, r)
	if !ok {
		return
	}
	q := DetailsQuery{
		Service:  qv.Get("service"),
		Status:   Status(qv.Get("status")),
		Severity: qv.Get("severity"),
		Cursor:   qv.Get("cursor"),
	}
	if l := qv.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || !decimal(l) || l[0] == '-' || n < 1 {
			writeError(w, http.StatusBadRequest, "invalid limit: must be an integer between 1 and "+strconv.Itoa(MaxDetailsLimit))
			return
		}
		q.Limit = n
	}
	page, err := h.s.Details(r.Context(), q)
	if err != nil {
		fail(w, h.opts.Logger, r, err)
		return
	}
	writeJSON(w, http.StatusOK, envelope{Status: "success", Data: page.Items, NextCursor: page.NextCursor})
}

func (h *handler) stats(w http.ResponseWriter, r *http.Request) {
	qv, ok := query(w, r)
	if !ok {
		return
	}
	q := StatsQuery{Service: qv.Get("service")}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"from", &q.From}, {"to", &q.To}} {
		v := qv.Get(p.name)
		if v == "" {
			continue
		}
		// An unescaped "+" of a UTC offset arrives as a space; RFC 3339
		// times never contain one, so put it back.
		t, err := time.Parse(time.RFC3339Nano, strings.ReplaceAll(v, " ", "+"))
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid "+p.name+": want an RFC 3339 time such as 2026-01-02T15:04:05Z")
			return
		}
		if t.IsZero() || !timeInRange(t) {
			// The zero time means "no bound" to StatsQuery: as a parameter it
			// would silently drop the bound, so it is refused with the rest.
			writeError(w, http.StatusBadRequest, "invalid "+p.name+": must be after 0001-01-01T00:00:00Z and before 10000-01-01T00:00:00Z (leave it out for an open window)")
			return
		}
		*p.dst = t
	}
	st, err := h.s.Stats(r.Context(), q)
	if err != nil {
		fail(w, h.opts.Logger, r, err)
		return
	}
	writeJSON(w, http.StatusOK, envelope{Status: "success", Data: st})
}

// decodeBody reads one JSON value into dst, rejecting bodies over the limit
// (413), text encoding.json would silently alter (see checkJSONText),
// trailing data and, if strict, unknown fields.
func decodeBody(w http.ResponseWriter, r *http.Request, limit int64, strict bool, dst any) bool {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		writeError(w, http.StatusRequestEntityTooLarge, "request body larger than "+strconv.FormatInt(mbe.Limit, 10)+" bytes")
		return false
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "could not read the request body")
		return false
	}
	if err := checkJSONText(raw); err != nil {
		writeError(w, http.StatusBadRequest, "invalid JSON: "+err.Error())
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if strict {
		dec.DisallowUnknownFields()
	}
	err = dec.Decode(dst)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("trailing data after the JSON value")
		}
	}
	if err == nil {
		return true
	}
	if errors.Is(err, io.EOF) {
		writeError(w, http.StatusBadRequest, "invalid JSON: empty body")
		return false
	}
	writeError(w, http.StatusBadRequest, "invalid JSON: "+err.Error())
	return false
}

// checkJSONText refuses what encoding/json would accept but change: bytes
// that are not UTF-8 and lone UTF-16 surrogate escapes (both decoded as
// U+FFFD), and the NUL escape \u0000, which no text of this API may hold.
// A backslash outside a string is a syntax error the decoder reports, so
// every backslash seen here starts an escape.
func checkJSONText(b []byte) error {
	if !utf8.Valid(b) {
		return errors.New("the body is not valid UTF-8")
	}
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		if i+1 >= len(b) || b[i+1] != 'u' {
			i++ // a two-character escape such as \" or \\
			continue
		}
		u, ok := hex4(b[i+2:])
		if !ok {
			return nil // malformed: the decoder reports it
		}
		i += 5
		switch {
		case u == 0:
			return errors.New("NUL character (\\u0000) in a string")
		case u >= 0xDC00 && u <= 0xDFFF:
			return errors.New("lone UTF-16 surrogate (low half) in a string")
		case u >= 0xD800 && u <= 0xDBFF:
			if i+6 < len(b) && b[i+1] == '\\' && b[i+2] == 'u' {
				if lo, ok := hex4(b[i+3:]); ok && lo >= 0xDC00 && lo <= 0xDFFF {
					i += 6
					continue
				}
			}
			return errors.New("lone UTF-16 surrogate (high half) in a string")
		}
	}
	return nil
}

// hex4 parses the four hex digits at the start of b.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

func (h *handler) create(w http.ResponseWriter, r *http.Request) {
	var n NewIncident
	if !decodeBody(w, r, h.opts.MaxBodyBytes, true, &n) {
		return
	}
	in, err := h.s.Open(r.Context(), n)
	if err != nil {
		fail(w, h.opts.Logger, r, err)
		return
	}
	w.Header().Set("Location", "/api/incidents/"+in.ID)
	writeJSON(w, http.StatusCreated, envelope{Status: "success", Data: in})
}

func (h *handler) get(w http.ResponseWriter, r *http.Request) {
	in, err := h.s.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		fail(w, h.opts.Logger, r, err)
		return
	}
	writeJSON(w, http.StatusOK, envelope{Status: "success", Data: in})
}

func (h *handler) action(w http.ResponseWriter, r *http.Request) {
	var f func(context.Context, string) (Incident, error)
	switch r.PathValue("action") {
	case "acknowledge":
		f = h.s.Acknowledge
	case "resolve":
		f = h.s.Resolve
	case "reopen":
		f = h.s.Reopen
	case "close":
		f = h.s.CloseIncident
	default:
		writeError(w, http.StatusNotFound, "no such action: use acknowledge, resolve, reopen or close")
		return
	}
	in, err := f(r.Context(), r.PathValue("id"))
	if err != nil {
		fail(w, h.opts.Logger, r, err)
		return
	}
	writeJSON(w, http.StatusOK, envelope{Status: "success", Data: in})
}

type webhookHandler struct {
	s    *Store
	opts IntakeOptions
	log  *slog.Logger
}

func (h *webhookHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed, use POST")
		return
	}
	if h.opts.ReadOnly {
		writeError(w, http.StatusServiceUnavailable, readOnlyMessage)
		return
	}
	// Not strict: Alertmanager may add fields to its payload.
	var msg WebhookMessage
	if !decodeBody(w, r, h.opts.MaxBodyBytes, false, &msg) {
		return
	}
	res, err := h.s.Ingest(r.Context(), msg, h.opts)
	if err != nil {
		fail(w, h.log, r, err)
		return
	}
	writeJSON(w, http.StatusOK, envelope{Status: "success", Data: res})
}
