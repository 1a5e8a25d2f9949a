package promflowtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The names service-metrics' /metrics must expose (the seed report's "3
// métriques internes").
var serviceInternalMetrics = []string{
	"service_metrics_collected_total",
	"service_metrics_errors_total",
	"service_metrics_poll_duration_seconds",
}

// mockStage is stage 1: health, /metrics and the three simulations.
func (s *seedRun) mockStage(ctx context.Context) {
	to, base := s.t.CheckTimeout, s.t.MockURL
	s.check(ctx, StageMockMetrics, "Health Check", to, func(ctx context.Context) (string, error) {
		a, err := s.do(ctx, http.MethodGet, base+"/health")
		if err != nil {
			return "", err
		}
		body := strings.TrimSpace(string(a.body))
		d := fmt.Sprintf("HTTP %d - %q", a.code, shorten(body, 80))
		if a.code != http.StatusOK || body != "Mock Metrics Service is UP!" {
			return d, errCheck
		}
		return d, nil
	})
	s.check(ctx, StageMockMetrics, "Metrics Endpoint", to, s.mockMetrics)
	for i, m := range s.metrics {
		s.simulated[i] = s.check(ctx, StageMockMetrics, m.check, to, func(ctx context.Context) (string, error) {
			a, err := s.do(ctx, http.MethodPost, base+m.route)
			if err != nil {
				return "", err
			}
			if a.code != http.StatusOK {
				return fmt.Sprintf("POST %s: HTTP %d - %q", m.route, a.code, shorten(string(a.body), 80)), errCheck
			}
			return "Valeur définie: " + m.unit, nil
		})
	}
}

func (s *seedRun) mockMetrics(ctx context.Context) (string, error) {
	a, err := s.do(ctx, http.MethodGet, s.t.MockURL+"/metrics")
	if err != nil {
		return "", err
	}
	if a.code != http.StatusOK {
		return fmt.Sprintf("HTTP %d - %q", a.code, shorten(string(a.body), 80)), errCheck
	}
	fams, err := parseMetrics(a.body)
	if err != nil {
		return fmt.Sprintf("HTTP %d - exposition illisible", a.code), err
	}
	s.r.MetricCount = len(fams)
	s.r.MetricSample = metricSample(fams)
	d := fmt.Sprintf("HTTP %d - **%d métriques** exposées", a.code, len(fams))
	var missing []string
	for _, m := range s.metrics {
		if _, ok := fams[m.metric]; !ok {
			missing = append(missing, m.metric)
		}
	}
	if len(missing) > 0 {
		return d + ", absentes: " + strings.Join(missing, ", "), errCheck
	}
	return d, nil
}

func parseMetrics(body []byte) (map[string]struct{}, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("parse /metrics: %w", err)
	}
	out := make(map[string]struct{}, len(fams))
	for name := range fams {
		out[name] = struct{}{}
	}
	return out, nil
}

// metricSample picks the seed report's sample: a few process and runtime
// metrics, then the simulated ones.
func metricSample(fams map[string]struct{}) []string {
	var names []string
	for name := range fams {
		names = append(names, name)
	}
	sort.Strings(names)
	var out []string
	for _, prefix := range []string{"process_", "go_", "nodejs_"} {
		n := 0
		for _, name := range names {
			if strings.HasPrefix(name, prefix) && n < 2 {
				out = append(out, name)
				n++
			}
		}
	}
	for _, m := range seedMetrics() {
		if _, ok := fams[m.metric]; ok {
			out = append(out, m.metric)
		}
	}
	return out
}

// prometheusStage is stage 2: health, the mock-metrics target, and the
// three queries (waiting for a scrape that shows the simulated values).
func (s *seedRun) prometheusStage(ctx context.Context) {
	to := s.t.CheckTimeout
	s.check(ctx, StagePrometheus, "Health Check", to, func(ctx context.Context) (string, error) {
		a, err := s.do(ctx, http.MethodGet, s.t.PrometheusURL+"/-/healthy")
		if err != nil {
			return "", err
		}
		d := strconv.Quote(shorten(strings.TrimSpace(string(a.body)), 80))
		if a.code != http.StatusOK {
			return fmt.Sprintf("HTTP %d - %s", a.code, d), errCheck
		}
		return d, nil
	})
	s.check(ctx, StagePrometheus, "Mock-Metrics Target Status", to, func(ctx context.Context) (string, error) {
		if s.promErr != nil {
			return "", s.promErr
		}
		target, err := s.prom.WaitTargetUp(ctx, s.t.MockJob, "")
		if err != nil {
			return fmt.Sprintf("job %q", s.t.MockJob), err
		}
		s.r.ScrapeURL, s.r.ScrapeInterval, s.r.LastScrape = target.ScrapeURL, target.ScrapeInterval, target.LastScrape
		return fmt.Sprintf("Target: `%s`, URL: `%s`", target.Health, target.ScrapeURL), nil
	})
	for i, m := range s.metrics {
		s.check(ctx, StagePrometheus, "Query "+m.metric, to, func(ctx context.Context) (string, error) {
			return s.queryValue(ctx, i)
		})
	}
}

func (s *seedRun) queryValue(ctx context.Context, i int) (string, error) {
	m := s.metrics[i]
	if !s.simulated[i] {
		return "non vérifié: la simulation a échoué", errCheck
	}
	if s.promErr != nil {
		return "", s.promErr
	}
	var last model.Vector
	_, err := s.query.WaitForValue(ctx, m.query.String(), func(v model.Vector) bool {
		last = v
		return vectorHas(v, m.value)
	})
	if err != nil {
		return "valeurs vues: " + vectorValues(last), err
	}
	s.r.Values[i].Prometheus, s.r.Values[i].PrometheusSeen = m.value, true
	return fmt.Sprintf("**Valeur: %s**", formatValue(m.value)), nil
}

func vectorHas(v model.Vector, want float64) bool {
	for _, smp := range v {
		if float64(smp.Value) == want {
			return true
		}
	}
	return false
}

func vectorValues(v model.Vector) string {
	if len(v) == 0 {
		return "aucune"
	}
	var out []string
	for _, smp := range v {
		out = append(out, formatValue(float64(smp.Value)))
	}
	return "[" + strings.Join(out, ", ") + "]"
}

func formatValue(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// serviceStage is stage 3: health, /metrics and the two incidents routes.
func (s *seedRun) serviceStage(ctx context.Context) {
	to, base := s.t.CheckTimeout, s.t.ServiceURL
	s.check(ctx, StageServiceMetrics, "Health Check", to, func(ctx context.Context) (string, error) {
		a, err := s.do(ctx, http.MethodGet, base+"/health")
		if err != nil {
			return "", err
		}
		var h struct {
			Status string `json:"status"`
		}
		if a.code != http.StatusOK || json.Unmarshal(a.body, &h) != nil || h.Status != "ok" {
			return fmt.Sprintf("HTTP %d - %s", a.code, shorten(string(a.body), 80)), errCheck
		}
		return fmt.Sprintf("HTTP %d - `{\"status\": \"ok\"}`", a.code), nil
	})
	s.check(ctx, StageServiceMetrics, "Prometheus Metrics Endpoint", to, s.serviceMetrics)
	s.check(ctx, StageServiceMetrics, "Incidents By Service API", to, func(ctx context.Context) (string, error) {
		rows, err := s.seedList(ctx, "/api/metrics/incidents/by-service")
		if err != nil {
			return "", err
		}
		s.r.Services = serviceRows(rows)
		return countDetails(len(rows), "service"), nil
	})
	s.check(ctx, StageServiceMetrics, "Incidents Details API", to, func(ctx context.Context) (string, error) {
		rows, err := s.seedList(ctx, "/api/metrics/incidents/details")
		if err != nil {
			return "", err
		}
		return countDetails(len(rows), "incident"), nil
	})
}

func (s *seedRun) serviceMetrics(ctx context.Context) (string, error) {
	a, err := s.do(ctx, http.MethodGet, s.t.ServiceURL+"/metrics")
	if err != nil {
		return "", err
	}
	if a.code != http.StatusOK {
		return fmt.Sprintf("HTTP %d - %q", a.code, shorten(string(a.body), 80)), errCheck
	}
	fams, err := parseMetrics(a.body)
	if err != nil {
		return fmt.Sprintf("HTTP %d - exposition illisible", a.code), err
	}
	var missing []string
	for _, name := range serviceInternalMetrics {
		if _, ok := fams[name]; !ok {
			missing = append(missing, name)
		}
	}
	d := fmt.Sprintf("%d métriques internes exposées", len(serviceInternalMetrics)-len(missing))
	if len(missing) > 0 {
		return d + ", absentes: " + strings.Join(missing, ", "), errCheck
	}
	return d, nil
}

// seedList gets a route answering the seed's shape
// {"status":"success","data":[...]} and returns the rows of data.
func (s *seedRun) seedList(ctx context.Context, path string) ([]map[string]json.RawMessage, error) {
	a, err := s.do(ctx, http.MethodGet, s.t.ServiceURL+path)
	if err != nil {
		return nil, err
	}
	var body struct {
		Status string                       `json:"status"`
		Data   []map[string]json.RawMessage `json:"data"`
	}
	if a.code != http.StatusOK {
		return nil, fmt.Errorf("GET %s: HTTP %d - %s", path, a.code, shorten(string(a.body), 120))
	}
	if err := json.Unmarshal(a.body, &body); err != nil || body.Status != "success" || body.Data == nil {
		return nil, fmt.Errorf("GET %s: not the seed shape {\"status\":\"success\",\"data\":[...]}: %s", path, shorten(string(a.body), 120))
	}
	return body.Data, nil
}

func serviceRows(rows []map[string]json.RawMessage) []SeedServiceRow {
	out := make([]SeedServiceRow, 0, len(rows))
	for _, row := range rows {
		out = append(out, SeedServiceRow{
			Service:      jsonText(row["service"]),
			Total:        jsonInt(row["total_incidents"]),
			Open:         jsonInt(row["open_count"]),
			Acknowledged: jsonInt(row["ack_count"]),
			Resolved:     jsonInt(row["resolved_count"]),
		})
	}
	return out
}

// jsonText returns a JSON string's value, or the raw text of any other
// value ("" for null or absent).
func jsonText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	if t := strings.TrimSpace(string(raw)); t != "null" {
		return t
	}
	return ""
}

// jsonInt reads a count sent as a JSON number or, as node-postgres does
// for COUNT(*), as a string.
func jsonInt(raw json.RawMessage) int64 {
	n, _ := strconv.ParseFloat(jsonText(raw), 64)
	return int64(n)
}

// countDetails says "**5 services** retournés", in the singular for 0 and 1
// as French does.
func countDetails(n int, noun string) string {
	if n > 1 {
		return fmt.Sprintf("**%d %ss** retournés", n, noun)
	}
	return fmt.Sprintf("**%d %s** retourné", n, noun)
}

// since formats an elapsed duration for details.
func since(start time.Time) string {
	return fmt.Sprintf("%.1fs", time.Since(start).Seconds())
}
