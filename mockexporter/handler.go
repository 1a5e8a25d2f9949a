package mockexporter

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// HealthBody is the body of GET /health, as the original service answered.
const HealthBody = "Mock Metrics Service is UP!"

type handler struct {
	r       *Registry
	mux     *http.ServeMux
	metrics http.Handler
}

// Handler returns the HTTP API (see the package documentation for the
// routes): /health, /metrics, the seed /simulate routes and the JSON control
// API under /api/v1/. Every call returns the same handler.
func (r *Registry) Handler() http.Handler {
	r.handlerOnce.Do(func() {
		g := prometheus.NewRegistry()
		if !r.opts.DisableRuntimeCollectors {
			g.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		}
		h := &handler{r: r, mux: http.NewServeMux()}
		// The registry gathers itself (exact types: gauge histograms); the
		// runtime collectors come from g.
		h.metrics = promhttp.HandlerFor(prometheus.Gatherers{g, r}, promhttp.HandlerOpts{EnableOpenMetrics: true})
		// /health and /metrics check their method themselves: with a
		// method in the pattern, the catch-all "/" below would answer 404
		// instead of 405 for POST /health.
		h.mux.HandleFunc("/health", h.health)
		h.mux.HandleFunc("/metrics", h.serveMetrics)
		h.mux.HandleFunc("/api/v1/metrics", h.apiMetrics)
		h.mux.HandleFunc("/api/v1/families", h.apiFamilies)
		h.mux.HandleFunc("/api/v1/series", h.apiSeries)
		h.mux.HandleFunc("/api/v1/series/reset", h.apiSeriesReset)
		h.mux.HandleFunc("/api/v1/scenarios", h.apiScenarios)
		h.mux.HandleFunc("/api/v1/scenarios/{id}", h.apiScenario)
		h.mux.HandleFunc("/api/v1/faults", h.apiFaults)
		h.mux.HandleFunc("/api/v1/reset", h.apiReset)
		h.mux.HandleFunc("/api/v1/usage", h.apiUsage)
		// Any other path, under /api/ or not, is an unknown route: 404 JSON.
		h.mux.HandleFunc("/", func(w http.ResponseWriter, req *http.Request) {
			writeError(w, http.StatusNotFound, fmt.Errorf("no route %s %s", req.Method, truncate(req.URL.Path)))
		})
		r.handler = h
	})
	return r.handler
}

func (h *handler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	defer func() {
		// Nothing here should panic; if it does, answer 500 rather than
		// killing the connection, and log it.
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			h.r.log.Error("mockexporter: panic serving request", "path", req.URL.Path, "panic", p)
			writeError(w, http.StatusInternalServerError, errors.New("internal error"))
		}
	}()
	if strings.HasPrefix(req.URL.Path, "/simulate/") {
		// Bypass the mux's path cleaning, which would redirect
		// /simulate/disk-usage//85 instead of reporting the empty label.
		h.simulate(w, req)
		return
	}
	if path.Clean(req.URL.Path) != req.URL.Path {
		// The mux would redirect; a client is better served by a 404.
		writeError(w, http.StatusNotFound, fmt.Errorf("no route %s %s", req.Method, truncate(req.URL.Path)))
		return
	}
	h.mux.ServeHTTP(w, req)
}

// getOnly answers 405 (text/plain, as the seed's routes) unless the method is
// GET or HEAD.
func getOnly(w http.ResponseWriter, req *http.Request) bool {
	if req.Method == http.MethodGet || req.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	http.Error(w, "405 method not allowed: use GET", http.StatusMethodNotAllowed)
	return false
}

func (h *handler) health(w http.ResponseWriter, req *http.Request) {
	if !getOnly(w, req) {
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, HealthBody)
}

func (h *handler) serveMetrics(w http.ResponseWriter, req *http.Request) {
	if !getOnly(w, req) {
		return
	}
	h.r.mu.Lock()
	status, delay := h.r.faults.Status, time.Duration(h.r.faults.Delay)
	h.r.mu.Unlock()
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-req.Context().Done():
			t.Stop()
			return
		}
	}
	if status != 0 {
		http.Error(w, "mockexporter: injected fault: /metrics answers "+strconv.Itoa(status), status)
		return
	}
	h.metrics.ServeHTTP(w, req)
}

// simulate serves the seed routes: POST only, text/plain answers.
func (h *handler) simulate(w http.ResponseWriter, req *http.Request) {
	call, err := parseSimulatePath(req.URL.EscapedPath())
	if errors.Is(err, errRouteNotFound) {
		http.Error(w, "404 page not found: no route "+truncate(req.URL.Path), http.StatusNotFound)
		return
	}
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "405 method not allowed: use POST", http.StatusMethodNotAllowed)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), statusOf(err))
		return
	}
	rt := call.route
	if rt.Value == "" {
		err = h.r.Add(rt.Metric, call.labels, 1)
	} else {
		err = h.r.SetValue(rt.Metric, call.labels, call.value)
	}
	if err != nil {
		http.Error(w, err.Error(), statusOf(err))
		return
	}
	series := rt.Metric + sortedLabels(call.labels)
	var msg string
	if rt.Value == "" {
		msg = series + " incremented by 1"
	} else {
		msg = series + " set to " + strconv.FormatFloat(call.value, 'g', -1, 64)
	}
	h.r.log.Info("mockexporter: simulate", "route", rt.Name, "metric", rt.Metric, "labels", call.labels, "value", call.value)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, msg+"\n")
}

func (h *handler) apiMetrics(w http.ResponseWriter, req *http.Request) {
	switch req.Method {
	case http.MethodGet, http.MethodHead:
		writeData(w, http.StatusOK, h.r.Families())
	case http.MethodPost:
		var m MetricOptions
		if !h.decode(w, req, &m) {
			return
		}
		if err := h.r.Declare(m); err != nil {
			writeError(w, statusOf(err), err)
			return
		}
		h.r.log.Info("mockexporter: metric declared", "metric", m.Name, "type", m.Type)
		for _, f := range h.r.Families() {
			if f.Name == m.Name {
				writeData(w, http.StatusCreated, f)
				return
			}
		}
	default:
		methodNotAllowed(w, "GET, POST")
	}
}

// FamilyInfo answers POST /api/v1/families: the template as declared
// and the number of series it holds.
type FamilyInfo struct {
	FamilyTemplate
	Series int `json:"series"`
}

func (h *handler) apiFamilies(w http.ResponseWriter, req *http.Request) {
	switch req.Method {
	case http.MethodGet, http.MethodHead:
		list := []FamilyInfo{}
		for _, ft := range h.r.GeneratedFamilies() {
			list = append(list, FamilyInfo{FamilyTemplate: ft, Series: h.r.familySeries(ft.Name)})
		}
		writeData(w, http.StatusOK, list)
	case http.MethodPost:
		var ft FamilyTemplate
		if !h.decode(w, req, &ft) {
			return
		}
		if err := h.r.DeclareFamily(ft); err != nil {
			writeError(w, statusOf(err), err)
			return
		}
		n := h.r.familySeries(ft.Name)
		h.r.log.Info("mockexporter: generated family declared", "metric", ft.Name, "type", ft.Type, "series", n)
		for _, got := range h.r.GeneratedFamilies() {
			if got.Name == ft.Name {
				writeData(w, http.StatusCreated, FamilyInfo{FamilyTemplate: got, Series: n})
				return
			}
		}
	default:
		methodNotAllowed(w, "GET, POST")
	}
}

// SetRequest is the body of POST /api/v1/series: the series (labels left out
// take the family's defaults) and exactly one of value, source, add or
// observe.
type SetRequest struct {
	Metric  string      `json:"metric"`
	Labels  Labels      `json:"labels,omitempty"`
	Value   *float64    `json:"value,omitempty"`
	Source  *SourceSpec `json:"source,omitempty"`
	Add     *float64    `json:"add,omitempty"`
	Observe []float64   `json:"observe,omitempty"`
}

// Apply performs the request on r.
func (sr SetRequest) Apply(r *Registry) error {
	n := 0
	for _, set := range []bool{sr.Value != nil, sr.Source != nil, sr.Add != nil, sr.Observe != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return validationf("", "give exactly one of value, source, add or observe")
	}
	switch {
	case sr.Value != nil:
		return r.SetValue(sr.Metric, sr.Labels, *sr.Value)
	case sr.Source != nil:
		src, err := sr.Source.Source()
		if err != nil {
			return err
		}
		return r.Set(sr.Metric, sr.Labels, src)
	case sr.Add != nil:
		return r.Add(sr.Metric, sr.Labels, *sr.Add)
	default:
		if len(sr.Observe) == 0 || len(sr.Observe) > 10_000 {
			return validationf("observe", "give 1 to 10000 observations")
		}
		return r.Observe(sr.Metric, sr.Labels, sr.Observe...)
	}
}

func (h *handler) apiSeries(w http.ResponseWriter, req *http.Request) {
	switch req.Method {
	case http.MethodGet, http.MethodHead:
		list, err := h.r.Series(req.URL.Query().Get("metric"))
		if err != nil {
			writeError(w, statusOf(err), err)
			return
		}
		writeData(w, http.StatusOK, list)
	case http.MethodPost:
		var sr SetRequest
		if !h.decode(w, req, &sr) {
			return
		}
		if err := sr.Apply(h.r); err != nil {
			writeError(w, statusOf(err), err)
			return
		}
		h.r.log.Info("mockexporter: series set", "metric", sr.Metric, "labels", sr.Labels)
		h.writeSeries(w, sr.Metric, sr.Labels)
	case http.MethodDelete:
		var ref SeriesRef
		if !h.decode(w, req, &ref) {
			return
		}
		if err := h.r.Delete(ref.Metric, ref.Labels); err != nil {
			writeError(w, statusOf(err), err)
			return
		}
		h.r.log.Info("mockexporter: series deleted", "metric", ref.Metric, "labels", ref.Labels)
		writeData(w, http.StatusOK, ref)
	default:
		methodNotAllowed(w, "GET, POST, DELETE")
	}
}

func (h *handler) apiSeriesReset(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		methodNotAllowed(w, "POST")
		return
	}
	var ref SeriesRef
	if !h.decode(w, req, &ref) {
		return
	}
	if err := h.r.ResetSeries(ref.Metric, ref.Labels); err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	h.r.log.Info("mockexporter: series reset", "metric", ref.Metric, "labels", ref.Labels)
	h.writeSeries(w, ref.Metric, ref.Labels)
}

func (h *handler) writeSeries(w http.ResponseWriter, metric string, labels Labels) {
	si, err := h.r.Get(metric, labels)
	if err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	writeData(w, http.StatusOK, si)
}

func (h *handler) apiScenarios(w http.ResponseWriter, req *http.Request) {
	switch req.Method {
	case http.MethodGet, http.MethodHead:
		writeData(w, http.StatusOK, h.r.Scenarios())
	case http.MethodPost:
		body, ok := h.readBody(w, req)
		if !ok {
			return
		}
		ct, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type"))
		if strings.Contains(ct, "json") && !strings.HasPrefix(strings.TrimSpace(string(body)), "{") {
			writeError(w, http.StatusBadRequest, validationf("scenario", "malformed JSON: expected an object"))
			return
		}
		sc, err := ParseScenario(body)
		if err != nil {
			writeError(w, statusOf(err), err)
			return
		}
		info, err := h.r.StartScenario(sc)
		if err != nil {
			writeError(w, statusOf(err), err)
			return
		}
		w.Header().Set("Location", "/api/v1/scenarios/"+info.ID)
		writeData(w, http.StatusCreated, info)
	default:
		methodNotAllowed(w, "GET, POST")
	}
}

func (h *handler) apiScenario(w http.ResponseWriter, req *http.Request) {
	id := req.PathValue("id")
	switch req.Method {
	case http.MethodGet, http.MethodHead:
		info, err := h.r.Scenario(id)
		if err != nil {
			writeError(w, statusOf(err), err)
			return
		}
		writeData(w, http.StatusOK, info)
	case http.MethodDelete:
		info, err := h.r.StopScenario(id)
		if err != nil {
			writeError(w, statusOf(err), err)
			return
		}
		writeData(w, http.StatusOK, info)
	default:
		methodNotAllowed(w, "GET, DELETE")
	}
}

func (h *handler) apiFaults(w http.ResponseWriter, req *http.Request) {
	switch req.Method {
	case http.MethodGet, http.MethodHead:
		writeData(w, http.StatusOK, h.r.Faults())
	case http.MethodPut:
		var f Faults
		if !h.decode(w, req, &f) {
			return
		}
		if err := h.r.SetFaults(f); err != nil {
			writeError(w, statusOf(err), err)
			return
		}
		h.r.log.Info("mockexporter: faults set", "status", f.Status, "delay", time.Duration(f.Delay), "hide", len(f.Hide))
		writeData(w, http.StatusOK, h.r.Faults())
	case http.MethodDelete:
		_ = h.r.SetFaults(Faults{})
		h.r.log.Info("mockexporter: faults cleared")
		writeData(w, http.StatusOK, h.r.Faults())
	default:
		methodNotAllowed(w, "GET, PUT, DELETE")
	}
}

func (h *handler) apiReset(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		methodNotAllowed(w, "POST")
		return
	}
	h.r.Reset()
	h.r.log.Info("mockexporter: reset")
	writeData(w, http.StatusOK, map[string]string{"message": "reset"})
}

func (h *handler) apiUsage(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		methodNotAllowed(w, "GET")
		return
	}
	writeData(w, http.StatusOK, h.r.Usage())
}

func (h *handler) readBody(w http.ResponseWriter, req *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, h.r.opts.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("request body over %d bytes", mbe.Limit))
		} else {
			writeError(w, http.StatusBadRequest, fmt.Errorf("reading body: %w", err))
		}
		return nil, false
	}
	return body, true
}

// decode reads one JSON value into v, rejecting unknown fields and trailing
// data; on failure it has answered the request.
func (h *handler) decode(w http.ResponseWriter, req *http.Request, v any) bool {
	body, ok := h.readBody(w, req)
	if !ok {
		return false
	}
	if err := decodeStrict(body, v); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return false
	}
	return true
}

func decodeStrict(body []byte, v any) error {
	// encoding/json would silently turn invalid UTF-8 and lone surrogates
	// into U+FFFD.
	if err := checkJSONText(body); err != nil {
		return fmt.Errorf("malformed JSON: %w", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("malformed JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("malformed JSON: trailing data after the value")
	}
	return nil
}

// statusOf maps registry errors to HTTP statuses.
func statusOf(err error) int {
	var ve *ValidationError
	switch {
	case errors.As(err, &ve), errors.Is(err, ErrWrongType):
		return http.StatusBadRequest
	case errors.Is(err, ErrUnknownMetric), errors.Is(err, ErrUnknownSeries), errors.Is(err, ErrUnknownScenario):
		return http.StatusNotFound
	case errors.Is(err, ErrLimit):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrDuplicateMetric):
		return http.StatusConflict
	}
	return http.StatusInternalServerError
}

type apiResponse struct {
	Status string `json:"status"`
	Data   any    `json:"data,omitempty"`
	Error  string `json:"error,omitempty"`
}

func writeData(w http.ResponseWriter, code int, data any) {
	writeJSON(w, code, apiResponse{Status: "success", Data: data})
}

func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, apiResponse{Status: "error", Error: err.Error()})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code = http.StatusInternalServerError
		b = []byte(`{"status":"error","error":"encoding the response failed"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	writeError(w, http.StatusMethodNotAllowed, errors.New("method not allowed; allowed: "+allow))
}

func sortedLabels(l Labels) string {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k + "=" + strconv.Quote(l[k]))
	}
	b.WriteByte('}')
	return b.String()
}

// JSONBody reports whether r's route takes a JSON body: the control API
// under /api/, except scenarios, which may be JSON or YAML. The seed's
// /simulate routes take no body. A write guard (httpedge.Guard) uses it to
// refuse bodies of other types.
func JSONBody(r *http.Request) bool {
	return strings.HasPrefix(r.URL.Path, "/api/") && !strings.HasPrefix(r.URL.Path, "/api/v1/scenarios")
}
