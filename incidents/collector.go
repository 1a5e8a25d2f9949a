package incidents

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// CollectorOptions configures [NewCollector]. The zero value works.
type CollectorOptions struct {
	// Namespace prefixes the metric names; default "promflow".
	Namespace string
	// Timeout bounds the query run on each scrape; default 5 s.
	Timeout time.Duration
}

// Collector is a prometheus.Collector that reads the service rollup on each
// scrape (one query, O(services)) and exports:
//
//	<ns>_incidents{service,status}                 gauge: incidents by current status
//	<ns>_incidents_mtta_seconds{service}           gauge: mean time to acknowledge, all time
//	<ns>_incidents_mttr_seconds{service}           gauge: mean time to resolve, all time
//	<ns>_incidents_acknowledged{service}           gauge: incidents ever acknowledged
//	<ns>_incidents_resolved_with_time{service}     gauge: incidents with a resolution time
//
// MTTA and MTTR are absent for a service with nothing acknowledged
// (resolved). When the database cannot be read the scrape reports an error
// for these metrics (promhttp answers 500 by default) instead of stale values.
type Collector struct {
	s                             *Store
	timeout                       time.Duration
	count, mtta, mttr, ackN, resN *prometheus.Desc
}

// NewCollector returns a Collector for the store; register it with
// prometheus.MustRegister or a registry of your own.
func NewCollector(s *Store, opts CollectorOptions) *Collector {
	ns := opts.Namespace
	if ns == "" {
		ns = "promflow"
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	return &Collector{
		s:       s,
		timeout: opts.Timeout,
		count: prometheus.NewDesc(prometheus.BuildFQName(ns, "", "incidents"),
			"Incidents by service and current status.", []string{"service", "status"}, nil),
		mtta: prometheus.NewDesc(prometheus.BuildFQName(ns, "incidents", "mtta_seconds"),
			"Mean time to acknowledge (first acknowledgement minus creation) over acknowledged incidents.", []string{"service"}, nil),
		mttr: prometheus.NewDesc(prometheus.BuildFQName(ns, "incidents", "mttr_seconds"),
			"Mean time to resolve (resolution minus creation) over resolved incidents.", []string{"service"}, nil),
		ackN: prometheus.NewDesc(prometheus.BuildFQName(ns, "incidents", "acknowledged"),
			"Incidents that have been acknowledged at least once.", []string{"service"}, nil),
		resN: prometheus.NewDesc(prometheus.BuildFQName(ns, "incidents", "resolved_with_time"),
			"Incidents that have a resolution time.", []string{"service"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.count
	ch <- c.mtta
	ch <- c.mttr
	ch <- c.ackN
	ch <- c.resN
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	rows, err := c.s.pool.Query(ctx, `SELECT source, open_n, ack_status, resolved_n, closed_n,
		ack_n, ack_sum::float8, res_n, res_sum::float8 FROM incident_rollup_service WHERE total > 0`)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.count, classify(err))
		return
	}
	defer rows.Close()
	for rows.Next() {
		var (
			src                           string
			open, ackSt, resolved, closed int64
			ackN, resN                    int64
			ackSum, resSum                float64
		)
		if err := rows.Scan(&src, &open, &ackSt, &resolved, &closed, &ackN, &ackSum, &resN, &resSum); err != nil {
			ch <- prometheus.NewInvalidMetric(c.count, classify(err))
			return
		}
		for _, v := range []struct {
			status Status
			n      int64
		}{{StatusOpen, open}, {StatusAcknowledged, ackSt}, {StatusResolved, resolved}, {StatusClosed, closed}} {
			c.send(ch, c.count, prometheus.GaugeValue, float64(v.n), src, string(v.status))
		}
		c.send(ch, c.ackN, prometheus.GaugeValue, float64(ackN), src)
		c.send(ch, c.resN, prometheus.GaugeValue, float64(resN), src)
		if ackN > 0 {
			c.send(ch, c.mtta, prometheus.GaugeValue, ackSum/float64(ackN), src)
		}
		if resN > 0 {
			c.send(ch, c.mttr, prometheus.GaugeValue, resSum/float64(resN), src)
		}
	}
	if err := rows.Err(); err != nil {
		ch <- prometheus.NewInvalidMetric(c.count, classify(err))
	}
}

// send is MustNewConstMetric without the panic: a label value that is not
// valid UTF-8 (possible in a SQL_ASCII database) becomes a scrape error.
func (c *Collector) send(ch chan<- prometheus.Metric, d *prometheus.Desc, t prometheus.ValueType, v float64, lvs ...string) {
	m, err := prometheus.NewConstMetric(d, t, v, lvs...)
	if err != nil {
		m = prometheus.NewInvalidMetric(d, err)
	}
	ch <- m
}
