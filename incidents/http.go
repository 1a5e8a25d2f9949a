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
//	POST /api/incidents/{id}/acknowledge | /resolve | /reopen
//	POST /api/alertmanager/webhook
//
// Success bodies are {"status":"success","data":...}; errors are
// {"status":"error","error":"..."} with 400 (bad input), 404, 405, 409 (wrong
// state), 413, 503 (database unavailable, or a write in read-only mode or
// refused by the database: the error then starts with "read-only:") or 500.
// Error texts never contain SQL. Times are in [TimeLayout].
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
		if err != nil || n < 1 {
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
		*p.dst = t
	}
	st, err := h.s.Stats(r.Context(), q)
	if err != nil {
		fail(w, h.opts.Logger, r, err)
		return
	}
	writeJSON(w, http.StatusOK, envelope{Status: "success", Data: st})
}

// decodeBody reads one JSON value into dst, rejecting unknown fields,
// trailing data and bodies over the limit (413).
func decodeBody(w http.ResponseWriter, r *http.Request, limit int64, dst any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	err := dec.Decode(dst)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("trailing data after the JSON value")
		}
	}
	if err == nil {
		return true
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		writeError(w, http.StatusRequestEntityTooLarge, "request body larger than "+strconv.FormatInt(mbe.Limit, 10)+" bytes")
		return false
	}
	if errors.Is(err, io.EOF) {
		writeError(w, http.StatusBadRequest, "invalid JSON: empty body")
		return false
	}
	writeError(w, http.StatusBadRequest, "invalid JSON: "+err.Error())
	return false
}

func (h *handler) create(w http.ResponseWriter, r *http.Request) {
	var n NewIncident
	if !decodeBody(w, r, h.opts.MaxBodyBytes, &n) {
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
	default:
		writeError(w, http.StatusNotFound, "no such action: use acknowledge, resolve or reopen")
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
	var msg WebhookMessage
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, h.opts.MaxBodyBytes))
	if err := dec.Decode(&msg); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, "request body larger than "+strconv.FormatInt(mbe.Limit, 10)+" bytes")
			return
		}
		writeError(w, http.StatusBadRequest, "invalid JSON: "+err.Error())
		return
	}
	res, err := h.s.Ingest(r.Context(), msg, h.opts)
	if err != nil {
		fail(w, h.log, r, err)
		return
	}
	writeJSON(w, http.StatusOK, envelope{Status: "success", Data: res})
}
