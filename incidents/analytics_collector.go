package incidents

import (
	"context"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// AnalyticsCollectorOptions configures [NewAnalyticsCollector]. The zero
// value works.
type AnalyticsCollectorOptions struct {
	// Namespace prefixes the metric names; default "promflow".
	Namespace string
	// Windows are the trailing windows reported, each labelled by its
	// name; default 1d, 7d and 30d. At most 6.
	Windows []AnalyticsWindow
	// MaxServices caps the services reported per window (the busiest over
	// the longest window); the others are summed into the service
	// "_other". Default 20.
	MaxServices int
	// Targets of the within-target shares; defaults as [Targets].
	Targets Targets
	// Timeout bounds one scrape's queries; default 5 s.
	Timeout time.Duration
}

// AnalyticsWindow is one trailing window of the analytics collector.
type AnalyticsWindow struct {
	Name     string // the window label, e.g. "7d"
	Duration time.Duration
}

// OtherService is the service label of the services beyond
// AnalyticsCollectorOptions.MaxServices.
const OtherService = "_other"

// AnalyticsCollector is a prometheus.Collector for alerting on incident
// health over trailing windows. On each scrape it runs one breakdown by
// service per window (rollup reads, see "Analytics" in the package
// documentation) and exports, with labels service and window (service
// empty, i.e. absent, for all services together):
//
//	<ns>_incidents_window_opened{service,window}          incidents created in the window
//	<ns>_incidents_ack_within_ratio{service,window}       share acknowledged within the ack target
//	<ns>_incidents_resolve_within_ratio{service,window}   share resolved within the resolve target
//	<ns>_incidents_window_ack_rate{service,window}        share acknowledged at all
//	<ns>_incidents_window_auto_resolved{service,window}   resolved without acknowledgement
//	<ns>_incidents_window_mtta_seconds{service,window}    mean time to acknowledge
//	<ns>_incidents_window_mttr_seconds{service,window}    mean time to resolve
//	<ns>_incidents_window_mttd_seconds{service,window}    mean time to detect
//	<ns>_incidents_ack_target_seconds, <ns>_incidents_resolve_target_seconds
//
// Cardinality is bounded: (MaxServices + 2) × windows series per metric.
// Ratios and means are absent where nothing was opened (acknowledged,
// resolved, detected). A database error fails the scrape for these metrics.
type AnalyticsCollector struct {
	s       *Store
	opts    AnalyticsCollectorOptions
	descs   map[string]*prometheus.Desc
	targets [2]*prometheus.Desc
}

// NewAnalyticsCollector returns an AnalyticsCollector for the store.
func NewAnalyticsCollector(s *Store, opts AnalyticsCollectorOptions) *AnalyticsCollector {
	if opts.Namespace == "" {
		opts.Namespace = "promflow"
	}
	if len(opts.Windows) == 0 {
		opts.Windows = []AnalyticsWindow{{"1d", 24 * time.Hour}, {"7d", 7 * 24 * time.Hour}, {"30d", 30 * 24 * time.Hour}}
	}
	if len(opts.Windows) > 6 {
		opts.Windows = opts.Windows[:6]
	}
	if opts.MaxServices <= 0 {
		opts.MaxServices = 20
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	if t, err := opts.Targets.withDefaults(); err == nil {
		opts.Targets = t
	} else {
		opts.Targets = Targets{AckWithin: DefaultAckWithin, ResolveWithin: DefaultResolveWithin}
	}
	c := &AnalyticsCollector{s: s, opts: opts, descs: map[string]*prometheus.Desc{}}
	labels := []string{"service", "window"}
	for name, help := range map[string]string{
		"window_opened":        "Incidents created in the trailing window.",
		"ack_within_ratio":     "Share of the window's incidents acknowledged within the ack target (never acknowledged counts as not within).",
		"resolve_within_ratio": "Share of the window's incidents resolved within the resolve target (unresolved counts as not within).",
		"window_ack_rate":      "Share of the window's incidents acknowledged at all.",
		"window_auto_resolved": "The window's incidents resolved without an acknowledgement.",
		"window_mtta_seconds":  "Mean time to acknowledge of the window's acknowledged incidents.",
		"window_mttr_seconds":  "Mean time to resolve of the window's resolved incidents.",
		"window_mttd_seconds":  "Mean time to detect (creation minus the alert's startsAt) of the window's alert-backed incidents.",
	} {
		c.descs[name] = prometheus.NewDesc(prometheus.BuildFQName(opts.Namespace, "incidents", name), help, labels, nil)
	}
	c.targets[0] = prometheus.NewDesc(prometheus.BuildFQName(opts.Namespace, "incidents", "ack_target_seconds"),
		"The ack target of ack_within_ratio.", nil, nil)
	c.targets[1] = prometheus.NewDesc(prometheus.BuildFQName(opts.Namespace, "incidents", "resolve_target_seconds"),
		"The resolve target of resolve_within_ratio.", nil, nil)
	return c
}

// Describe implements prometheus.Collector.
func (c *AnalyticsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
	ch <- c.targets[0]
	ch <- c.targets[1]
}

// windowSums are the additive figures of a group, from which ratios and
// means of merged groups follow exactly.
type windowSums struct {
	opened, acked, resolved, detected, auto float64
	ackIn, resIn, ackSum, resSum, detSum    float64
}

func sumsOf(r BreakdownRow) windowSums {
	v := func(p *float64, n float64) float64 {
		if p == nil {
			return 0
		}
		return *p * n
	}
	n := float64(r.Total)
	return windowSums{opened: n, acked: float64(r.Acknowledged), resolved: float64(r.Resolved), detected: float64(r.Detected),
		auto: float64(r.AutoResolved), ackIn: v(r.AckWithinRatio, n), resIn: v(r.ResolveWithinRatio, n),
		ackSum: v(r.MTTA, float64(r.Acknowledged)), resSum: v(r.MTTR, float64(r.Resolved)), detSum: v(r.MTTD, float64(r.Detected))}
}

func (w *windowSums) add(o windowSums) {
	w.opened += o.opened
	w.acked += o.acked
	w.resolved += o.resolved
	w.detected += o.detected
	w.auto += o.auto
	w.ackIn += o.ackIn
	w.resIn += o.resIn
	w.ackSum += o.ackSum
	w.resSum += o.resSum
	w.detSum += o.detSum
}

// Collect implements prometheus.Collector.
func (c *AnalyticsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.Timeout)
	defer cancel()
	ch <- prometheus.MustNewConstMetric(c.targets[0], prometheus.GaugeValue, c.opts.Targets.AckWithin.Seconds())
	ch <- prometheus.MustNewConstMetric(c.targets[1], prometheus.GaugeValue, c.opts.Targets.ResolveWithin.Seconds())
	now := c.s.now()
	per := make([]map[string]windowSums, len(c.opts.Windows))
	longest := 0
	for i, w := range c.opts.Windows {
		page, err := c.s.Breakdown(ctx, BreakdownQuery{GroupBy: GroupByService, From: now.Add(-w.Duration), To: now,
			Targets: c.opts.Targets, Limit: MaxDetailsLimit})
		if err != nil {
			ch <- prometheus.NewInvalidMetric(c.descs["window_opened"], err)
			return
		}
		per[i] = map[string]windowSums{}
		for _, r := range page.Rows {
			per[i][r.Key] = sumsOf(r)
		}
		if w.Duration > c.opts.Windows[longest].Duration {
			longest = i
		}
	}
	keep := c.topServices(per[longest])
	for i, w := range c.opts.Windows {
		out := map[string]windowSums{}
		var all windowSums
		for svc, s := range per[i] {
			all.add(s)
			if !keep[svc] {
				svc = OtherService
			}
			o := out[svc]
			o.add(s)
			out[svc] = o
		}
		out[""] = all
		for svc, s := range out {
			c.emit(ch, svc, w.Name, s)
		}
	}
}

// topServices is the set of the MaxServices busiest services.
func (c *AnalyticsCollector) topServices(m map[string]windowSums) map[string]bool {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool {
		if m[names[i]].opened != m[names[j]].opened {
			return m[names[i]].opened > m[names[j]].opened
		}
		return names[i] < names[j]
	})
	keep := map[string]bool{}
	for _, n := range names[:min(len(names), c.opts.MaxServices)] {
		keep[n] = true
	}
	return keep
}

func (c *AnalyticsCollector) emit(ch chan<- prometheus.Metric, svc, window string, s windowSums) {
	send := func(name string, v float64) {
		m, err := prometheus.NewConstMetric(c.descs[name], prometheus.GaugeValue, v, svc, window)
		if err != nil {
			m = prometheus.NewInvalidMetric(c.descs[name], err)
		}
		ch <- m
	}
	send("window_opened", s.opened)
	send("window_auto_resolved", s.auto)
	if s.opened > 0 {
		send("ack_within_ratio", s.ackIn/s.opened)
		send("resolve_within_ratio", s.resIn/s.opened)
		send("window_ack_rate", s.acked/s.opened)
	}
	if s.acked > 0 {
		send("window_mtta_seconds", s.ackSum/s.acked)
	}
	if s.resolved > 0 {
		send("window_mttr_seconds", s.resSum/s.resolved)
	}
	if s.detected > 0 {
		send("window_mttd_seconds", s.detSum/s.detected)
	}
}
