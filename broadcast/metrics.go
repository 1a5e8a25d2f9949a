package broadcast

import (
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// hubMetrics are the hub's self-metrics, kept in atomics so that the
// publish path does not touch prometheus types.
type hubMetrics struct {
	topics    []string
	connected atomic.Int64
	published []atomic.Uint64
	delivered []atomic.Uint64
	skipped   []atomic.Uint64

	mu       sync.Mutex
	discBy   map[string]uint64
	refuseBy map[string]uint64
}

func (m *hubMetrics) init(topics []Topic) {
	for _, t := range topics {
		m.topics = append(m.topics, t.Name)
	}
	m.published = make([]atomic.Uint64, len(topics))
	m.delivered = make([]atomic.Uint64, len(topics))
	m.skipped = make([]atomic.Uint64, len(topics))
	// Every reason is exported from the start, at 0, so that rate() and
	// alerts see the first disconnect of each kind.
	m.discBy = make(map[string]uint64)
	for _, r := range []string{reasonClientClosed, reasonReadLimit, reasonProtocol, reasonSlow,
		reasonWriteError, reasonWriteTimeout, reasonPingTimeout, reasonShutdown} {
		m.discBy[r] = 0
	}
	m.refuseBy = make(map[string]uint64)
	for _, r := range []string{refusedUnauthorized, refusedOrigin, refusedCapacity, refusedShutdown} {
		m.refuseBy[r] = 0
	}
}

// Reasons an upgrade is refused, the values of the reason label of
// broadcast_connections_refused_total.
const (
	refusedUnauthorized = "unauthorized" // Authorize returned an error
	refusedOrigin       = "origin"       // Origin not allowed (403)
	refusedCapacity     = "capacity"     // MaxClients reached (503)
	refusedShutdown     = "shutdown"     // the hub is shut down (503)
)

func (m *hubMetrics) disconnected(reason string) {
	m.mu.Lock()
	m.discBy[reason]++
	m.mu.Unlock()
}

func (m *hubMetrics) refused(reason string) {
	m.mu.Lock()
	m.refuseBy[reason]++
	m.mu.Unlock()
}

var (
	descClients = prometheus.NewDesc("broadcast_clients_connected",
		"WebSocket clients connected to the hub.", nil, nil)
	descPublished = prometheus.NewDesc("broadcast_messages_published_total",
		"Messages published to the hub, per topic.", []string{"topic"}, nil)
	descDelivered = prometheus.NewDesc("broadcast_messages_delivered_total",
		"Messages written to clients, per topic.", []string{"topic"}, nil)
	descSkipped = prometheus.NewDesc("broadcast_snapshots_skipped_total",
		"Snapshot messages a slow client never received because a newer one replaced them, per topic.", []string{"topic"}, nil)
	descDisconnected = prometheus.NewDesc("broadcast_clients_disconnected_total",
		"Clients disconnected, per reason (client_closed, read_limit, protocol_error, slow_client, write_error, write_timeout, ping_timeout, shutdown).", []string{"reason"}, nil)
	descRefused = prometheus.NewDesc("broadcast_connections_refused_total",
		"Upgrade requests refused, per reason (unauthorized, origin, capacity, shutdown).", []string{"reason"}, nil)
)

// Describe implements prometheus.Collector.
func (h *Hub) Describe(ch chan<- *prometheus.Desc) {
	ch <- descClients
	ch <- descPublished
	ch <- descDelivered
	ch <- descSkipped
	ch <- descDisconnected
	ch <- descRefused
}

// Collect implements prometheus.Collector: the hub's self-metrics.
func (h *Hub) Collect(ch chan<- prometheus.Metric) {
	m := &h.metrics
	ch <- prometheus.MustNewConstMetric(descClients, prometheus.GaugeValue, float64(m.connected.Load()))
	for i, t := range m.topics {
		ch <- prometheus.MustNewConstMetric(descPublished, prometheus.CounterValue, float64(m.published[i].Load()), t)
		ch <- prometheus.MustNewConstMetric(descDelivered, prometheus.CounterValue, float64(m.delivered[i].Load()), t)
		if h.topics[i].Kind == SnapshotTopic {
			ch <- prometheus.MustNewConstMetric(descSkipped, prometheus.CounterValue, float64(m.skipped[i].Load()), t)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for r, n := range m.discBy {
		ch <- prometheus.MustNewConstMetric(descDisconnected, prometheus.CounterValue, float64(n), r)
	}
	for r, n := range m.refuseBy {
		ch <- prometheus.MustNewConstMetric(descRefused, prometheus.CounterValue, float64(n), r)
	}
}

var _ prometheus.Collector = (*Hub)(nil)
