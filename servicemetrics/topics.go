package servicemetrics

import "github.com/promflow/promflow/broadcast"

// The WebSocket topics of service-metrics, which are also the "type" of
// their messages (the original service's names).
const (
	TopicInstantMetrics = "instant_metrics" // snapshot: the instant queries' latest results
	TopicRangeMetrics   = "range_metrics"   // snapshot: the range queries' whole windows
	TopicRangeUpdate    = "range_update"    // snapshot: what the last poll changed in the windows
	TopicIncident       = "incident"        // events: incident lifecycle changes, in order
	TopicAlerts         = "alerts"          // snapshot: Prometheus' firing alerts, linked to incidents, and the rules' thresholds
)

// ConnectMessage is the "message" of the welcome every WebSocket client
// receives, as the original service sent it.
const ConnectMessage = "Connected to service-metrics"

// Topics returns the hub topics service-metrics publishes on.
func Topics() []broadcast.Topic {
	return []broadcast.Topic{
		{Name: TopicInstantMetrics, Kind: broadcast.SnapshotTopic},
		{Name: TopicRangeMetrics, Kind: broadcast.SnapshotTopic},
		{Name: TopicRangeUpdate, Kind: broadcast.SnapshotTopic},
		{Name: TopicIncident, Kind: broadcast.EventTopic},
		{Name: TopicAlerts, Kind: broadcast.SnapshotTopic},
	}
}
