package mockexporter

import (
	"errors"
	"math"
	"net/url"
	"strconv"
	"strings"
)

// Default label values of the seed catalogue's pre-declared series. The
// fixed labels of the original service (instance, service, mountpoint,
// endpoint, namespace) are the same; the others are defaults chosen here.
const (
	DefaultInstance   = "mock-app-1"
	DefaultService    = "mock-service"
	DefaultMountpoint = "/data"
	DefaultEndpoint   = "/api/v1/data"
	DefaultNamespace  = "default"
)

// Catalogue returns the 26 mock_* families of the original mock-metrics
// service, with their names, types and label names. Each has one default
// series so that every family is exposed from the first scrape, with value 0
// except mock_service_up, which starts at 1 (up), so that a fresh exporter
// does not look like an outage:
//
//	mock_high_memory_usage_bytes, mock_memory_leak_detected,
//	mock_high_cpu_usage_percent, mock_cpu_spike_detected,
//	mock_low_cpu_idle_percent              {instance="mock-app-1",service="mock-service"}
//	mock_disk_usage_percent                {device="sda",mountpoint="/data"}
//	mock_disk_read_errors_total,
//	mock_disk_write_errors_total           {device="sda"}
//	mock_http_error_rate_percent,
//	mock_http_latency_seconds              {service="mock-service",endpoint="/api/v1/data"}
//	mock_service_up, mock_connection_drops_total {service="mock-service"}
//	mock_packet_loss_percent               {interface="eth0"}
//	mock_db_*                              {db_name="main"}
//	mock_pod_crash_loop                    {pod_name="mock-pod",namespace="default"}
//	mock_service_unavailable               {service_name="mock-service"}
//	mock_queue_backlog_high_count          {queue_name="mock-queue"}
//	mock_cache_miss_rate_percent           {cache_name="mock-cache"}
//	mock_prometheus_scrape_failed,
//	mock_prometheus_target_down            {job_name="mock-metrics",instance="localhost:8082"}
//	mock_prometheus_tsdb_high_series,
//	mock_prometheus_high_memory_bytes,
//	mock_prometheus_high_cpu_percent       {instance="localhost:9090"}
//
// Ranges: *_percent 0–100; *_detected, *_up, *_failed, *_down,
// *_crash_loop and *_unavailable are 0/1 statuses; the slow-query and
// backlog counts are whole numbers; everything else is ≥ 0.
func Catalogue() []MetricOptions {
	app := Labels{"instance": DefaultInstance, "service": DefaultService}
	g := func(name, help string, rng Range, labels []string, defaults Labels) MetricOptions {
		return MetricOptions{Name: name, Help: help, Type: Gauge, Range: rng, LabelNames: labels, Defaults: defaults}
	}
	c := func(name, help string, labels []string, defaults Labels) MetricOptions {
		return MetricOptions{Name: name, Help: help, Type: Counter, Range: NonNegative, LabelNames: labels, Defaults: defaults}
	}
	inst := []string{"instance", "service"}
	db := Labels{"db_name": "main"}
	promTarget := Labels{"job_name": "mock-metrics", "instance": "localhost:8082"}
	promSelf := Labels{"instance": "localhost:9090"}
	up := g("mock_service_up", "Simulated service status (1 up, 0 down).", Status, []string{"service"}, Labels{"service": DefaultService})
	up.Initial = 1
	return []MetricOptions{
		g("mock_high_memory_usage_bytes", "Simulated memory usage of the application.", NonNegative, inst, app),
		g("mock_memory_leak_detected", "Simulated memory leak flag (1 detected).", Status, inst, app),
		g("mock_high_cpu_usage_percent", "Simulated CPU usage in percent.", Percent, inst, app),
		g("mock_cpu_spike_detected", "Simulated CPU spike flag (1 detected).", Status, inst, app),
		g("mock_low_cpu_idle_percent", "Simulated CPU idle time in percent.", Percent, inst, app),
		g("mock_disk_usage_percent", "Simulated disk usage in percent.", Percent, []string{"device", "mountpoint"}, Labels{"device": "sda", "mountpoint": DefaultMountpoint}),
		c("mock_disk_read_errors_total", "Simulated disk read errors.", []string{"device"}, Labels{"device": "sda"}),
		c("mock_disk_write_errors_total", "Simulated disk write errors.", []string{"device"}, Labels{"device": "sda"}),
		g("mock_http_error_rate_percent", "Simulated HTTP error rate in percent.", Percent, []string{"service", "endpoint"}, Labels{"service": DefaultService, "endpoint": DefaultEndpoint}),
		g("mock_http_latency_seconds", "Simulated HTTP latency in seconds.", NonNegative, []string{"service", "endpoint"}, Labels{"service": DefaultService, "endpoint": DefaultEndpoint}),
		up,
		c("mock_connection_drops_total", "Simulated dropped connections.", []string{"service"}, Labels{"service": DefaultService}),
		g("mock_packet_loss_percent", "Simulated packet loss in percent.", Percent, []string{"interface"}, Labels{"interface": "eth0"}),
		g("mock_db_connection_failed", "Simulated database connection failure flag (1 failed).", Status, []string{"db_name"}, db),
		g("mock_db_slow_queries_total", "Simulated number of slow queries (a gauge, as in the original service).", Count, []string{"db_name"}, db),
		g("mock_db_high_lock_time_seconds", "Simulated database lock time in seconds.", NonNegative, []string{"db_name"}, db),
		g("mock_db_disk_full_percent", "Simulated database disk usage in percent.", Percent, []string{"db_name"}, db),
		g("mock_pod_crash_loop", "Simulated pod crash loop flag (1 crash-looping).", Status, []string{"pod_name", "namespace"}, Labels{"pod_name": "mock-pod", "namespace": DefaultNamespace}),
		g("mock_service_unavailable", "Simulated service unavailability flag (1 unavailable).", Status, []string{"service_name"}, Labels{"service_name": DefaultService}),
		g("mock_queue_backlog_high_count", "Simulated queue backlog length.", Count, []string{"queue_name"}, Labels{"queue_name": "mock-queue"}),
		g("mock_cache_miss_rate_percent", "Simulated cache miss rate in percent.", Percent, []string{"cache_name"}, Labels{"cache_name": "mock-cache"}),
		g("mock_prometheus_scrape_failed", "Simulated failed scrape flag (1 failed).", Status, []string{"job_name", "instance"}, promTarget),
		g("mock_prometheus_target_down", "Simulated target down flag (1 down).", Status, []string{"job_name", "instance"}, promTarget),
		g("mock_prometheus_tsdb_high_series", "Simulated number of TSDB head series.", NonNegative, []string{"instance"}, promSelf),
		g("mock_prometheus_high_memory_bytes", "Simulated Prometheus memory usage in bytes.", NonNegative, []string{"instance"}, promSelf),
		g("mock_prometheus_high_cpu_percent", "Simulated Prometheus CPU usage in percent.", Percent, []string{"instance"}, promSelf),
	}
}

// catalogueMaxLabels and catalogueMaxValueLen are the most label names of a
// catalogue family and its longest label value (fixed or default): the
// floors of Options.MaxLabels and MaxLabelValueBytes.
var catalogueMaxLabels, catalogueMaxValueLen = func() (int, int) {
	var n, l int
	for _, m := range Catalogue() {
		n = max(n, len(m.LabelNames))
		for _, v := range m.Defaults {
			l = max(l, len(v))
		}
	}
	for _, r := range seedRoutes {
		for _, v := range r.Fixed {
			l = max(l, len(v))
		}
	}
	return n, l
}()

// SeedRoute is one POST /simulate/... route of the original service.
type SeedRoute struct {
	// Name is the path segment after /simulate/, e.g. "disk-usage".
	Name string
	// Metric is the family the route writes.
	Metric string
	// Args are the label names taken from the path, in order.
	Args []string
	// Fixed are the labels the route always sets.
	Fixed Labels
	// Value is how the last path segment is used: "value", "status",
	// "count", or "" when the route has no value and adds 1 to a counter.
	Value string
}

// Pattern returns the route's path pattern, e.g.
// "/simulate/disk-usage/{device}/{value}".
func (sr SeedRoute) Pattern() string {
	var b strings.Builder
	b.WriteString("/simulate/")
	b.WriteString(sr.Name)
	for _, a := range sr.Args {
		b.WriteString("/{" + a + "}")
	}
	if sr.Value != "" {
		b.WriteString("/{" + sr.Value + "}")
	}
	return b.String()
}

var seedRoutes = func() []SeedRoute {
	app := Labels{"instance": DefaultInstance, "service": DefaultService}
	http := Labels{"endpoint": DefaultEndpoint}
	return []SeedRoute{
		{"memory-usage", "mock_high_memory_usage_bytes", nil, app, "value"},
		{"memory-leak", "mock_memory_leak_detected", nil, app, "status"},
		{"cpu-usage", "mock_high_cpu_usage_percent", nil, app, "value"},
		{"cpu-spike", "mock_cpu_spike_detected", nil, app, "status"},
		{"low-cpu-idle", "mock_low_cpu_idle_percent", nil, app, "value"},
		{"disk-usage", "mock_disk_usage_percent", []string{"device"}, Labels{"mountpoint": DefaultMountpoint}, "value"},
		{"disk-read-error", "mock_disk_read_errors_total", []string{"device"}, nil, ""},
		{"disk-write-error", "mock_disk_write_errors_total", []string{"device"}, nil, ""},
		{"http-error-rate", "mock_http_error_rate_percent", []string{"service"}, http, "value"},
		{"http-latency", "mock_http_latency_seconds", []string{"service"}, http, "value"},
		{"service-up", "mock_service_up", []string{"service"}, nil, "status"},
		{"connection-drops", "mock_connection_drops_total", []string{"service"}, nil, ""},
		{"packet-loss", "mock_packet_loss_percent", []string{"interface"}, nil, "value"},
		{"db-connection-failed", "mock_db_connection_failed", []string{"db_name"}, nil, "status"},
		{"db-slow-queries", "mock_db_slow_queries_total", []string{"db_name"}, nil, "count"},
		{"db-high-lock-time", "mock_db_high_lock_time_seconds", []string{"db_name"}, nil, "value"},
		{"db-disk-full", "mock_db_disk_full_percent", []string{"db_name"}, nil, "value"},
		{"pod-crash-loop", "mock_pod_crash_loop", []string{"pod_name"}, Labels{"namespace": DefaultNamespace}, "status"},
		{"service-unavailable", "mock_service_unavailable", []string{"service_name"}, nil, "status"},
		{"queue-backlog-high", "mock_queue_backlog_high_count", []string{"queue_name"}, nil, "count"},
		{"cache-miss-rate", "mock_cache_miss_rate_percent", []string{"cache_name"}, nil, "value"},
		{"prometheus-scrape-failed", "mock_prometheus_scrape_failed", []string{"job_name", "instance"}, nil, "status"},
		{"prometheus-target-down", "mock_prometheus_target_down", []string{"job_name", "instance"}, nil, "status"},
		{"prometheus-tsdb-high-series", "mock_prometheus_tsdb_high_series", []string{"instance"}, nil, "value"},
		{"prometheus-high-memory", "mock_prometheus_high_memory_bytes", []string{"instance"}, nil, "value"},
		{"prometheus-high-cpu", "mock_prometheus_high_cpu_percent", []string{"instance"}, nil, "value"},
	}
}()

// SeedRoutes returns the 26 seed routes.
func SeedRoutes() []SeedRoute {
	out := make([]SeedRoute, len(seedRoutes))
	for i, r := range seedRoutes {
		r.Args = append([]string(nil), r.Args...)
		r.Fixed = cloneLabels(r.Fixed)
		out[i] = r
	}
	return out
}

// errRouteNotFound: the path is not one of the seed routes (404).
var errRouteNotFound = errors.New("no such /simulate route")

// seedCall is a parsed /simulate request.
type seedCall struct {
	route  *SeedRoute
	labels Labels
	value  float64 // unused for increment routes
}

// parseSimulatePath parses an escaped URL path such as
// "/simulate/disk-usage/sda/85". It returns errRouteNotFound for unknown
// routes or a wrong number of segments, and a *ValidationError for bad label
// values or a value that is not a finite decimal number (see parseDecimal). Range checks (percent,
// status, sign) are the registry's.
func parseSimulatePath(escapedPath string) (seedCall, error) {
	rest, ok := strings.CutPrefix(escapedPath, "/simulate/")
	if !ok || len(rest) > 4096 {
		return seedCall{}, errRouteNotFound
	}
	segs := strings.Split(rest, "/")
	var route *SeedRoute
	for i := range seedRoutes {
		if seedRoutes[i].Name == segs[0] {
			route = &seedRoutes[i]
			break
		}
	}
	if route == nil {
		return seedCall{}, errRouteNotFound
	}
	want := 1 + len(route.Args)
	if route.Value != "" {
		want++
	}
	if len(segs) != want {
		return seedCall{}, errRouteNotFound
	}
	call := seedCall{route: route, labels: Labels{}}
	for k, v := range route.Fixed {
		call.labels[k] = v
	}
	for i, name := range route.Args {
		v, err := url.PathUnescape(segs[1+i])
		if err != nil {
			return seedCall{}, validationf("labels."+name, "bad escape in %q", truncate(segs[1+i]))
		}
		// The length is the registry's check (Options.MaxLabelValueBytes).
		if err := checkPathLabel(name, v); err != nil {
			return seedCall{}, err
		}
		call.labels[name] = v
	}
	if route.Value != "" {
		raw, err := url.PathUnescape(segs[want-1])
		if err != nil {
			raw = segs[want-1]
		}
		v, err := parseDecimal(raw)
		if err != nil {
			return seedCall{}, validationf(route.Value, "%q is not a finite number (decimal digits only)", truncate(raw))
		}
		call.value = v
	}
	return call, nil
}

// parseDecimal parses a finite decimal number: an optional sign, digits
// with an optional fraction, an optional exponent ("85", "-0.5", ".5",
// "1e3"). strconv.ParseFloat alone would also take hex floats ("0x1p4"),
// underscores ("1_000"), "Inf", "infinity" and "NaN".
func parseDecimal(s string) (float64, error) {
	if !isDecimal(s) {
		return 0, strconv.ErrSyntax
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, strconv.ErrRange
	}
	return v, nil
}

// isDecimal reports whether s is [+-]?(d+(.d*)?|.d+)([eE][+-]?d+)?.
func isDecimal(s string) bool {
	digits := func(i int) int {
		j := i
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		return j
	}
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	j := digits(i)
	n := j - i
	if j < len(s) && s[j] == '.' {
		k := digits(j + 1)
		n += k - j - 1
		j = k
	}
	if n == 0 {
		return false
	}
	if j < len(s) && (s[j] == 'e' || s[j] == 'E') {
		j++
		if j < len(s) && (s[j] == '+' || s[j] == '-') {
			j++
		}
		k := digits(j)
		if k == j {
			return false
		}
		j = k
	}
	return j == len(s)
}
