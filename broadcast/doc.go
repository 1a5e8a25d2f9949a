// Package broadcast pushes live data to browsers over WebSocket: a [Hub]
// that fans published JSON messages out to its clients, and a [Poller] that
// publishes Prometheus query results to it on an interval.
//
// Start with [NewHub], mount the hub on a route (it is an http.Handler; use
// [IsWebSocketUpgrade] to serve a page on the same route), publish with
// [Hub.Publish] or [Hub.PublishRaw], and call [Hub.Shutdown] when done:
// http.Server.Shutdown does not close hijacked WebSocket connections.
// [NewPoller] with a *promquery.Client and the hub, then [Poller.Run],
// publishes instant_metrics and range_metrics snapshots.
//
// # Protocol
//
// A client first receives
//
//	{"type":"connection","message":"Connected to service-metrics","timestamp":"2026-01-02T15:04:05.000Z"}
//
// then at once the latest message of every snapshot topic it is subscribed
// to. Every JSON message it sends is answered with
// {"type":"ack","requestType":"<its type>","timestamp":...}.
// {"type":"subscribe","topics":["incident"]} and
// {"type":"unsubscribe","topics":[...]} change what it receives: all topics
// by default; the first subscribe narrows that to the topics listed, later
// ones add to them. A request naming an unknown topic is answered with
// {"type":"error","requestType":...,"error":...} and changes nothing. A
// binary message closes the client with 1003, a malformed one (not a JSON
// object with a string "type") with 1007, one bigger than the read limit
// with 1009.
//
// # Topics
//
// A topic is a [SnapshotTopic] (only the newest message matters: a slow
// client skips stale ones and its queue never grows) or an [EventTopic]
// (every message, in order: a client more than EventQueueSize messages
// behind is disconnected with 1008 rather than silently missing one). Each
// publish is encoded once; all clients share the same bytes.
//
// # Resources
//
// An idle client costs one goroutine (which reads: it must, to answer pings
// and take client messages) and its connection buffers, about 16 KB in all.
// Writes are done by a few writer goroutines per core (HubOptions.Writers)
// that exist only while messages are pending and take clients in turn, in
// chunks; a writer blocked on a slow client is relieved of its remaining
// clients after 10 ms, so a slow client never holds up the others. One hub
// goroutine sends keepalive pings and enforces the write timeout, so no
// write needs a timer of its own. Upgrades beyond MaxClients get 503,
// disallowed origins 403. The hub never holds its lock while writing to or
// closing a connection.
//
// # Writing
//
// coder/websocket does the opening handshake, reads client messages,
// answers and sends pings and runs the close handshake. The hub's own
// messages are framed once per message (a server's frames are not masked,
// so every client gets the same bytes) and written as whole frames to the
// connection that coder/websocket was handed at the upgrade, under a
// per-connection lock that coder/websocket's control frames take too; no
// data frame is written after a close frame. On Linux (but linux/386) a
// frame is written with one non-blocking send(2) made without the
// scheduler's blocking system call bookkeeping; a full socket buffer falls
// back to waiting in the runtime's poller like any net.Conn write. On other
// platforms every frame is written through net.Conn. On a fan-out to 10,000 loopback
// clients this took about a third off the hub's CPU per publish
// (BenchmarkFanout, BENCHMARKS.md). Compression is not negotiated: it would
// defeat sharing the frame.
//
// # Concurrency
//
// All Hub and Poller methods are safe for concurrent use. Publish never
// blocks on clients. Shutdown is idempotent and returns when every goroutine
// the hub started has exited; Poller.Run returns when its queries have.
//
// # Metrics
//
// Hub and Poller are prometheus.Collectors: register them to expose
// broadcast_clients_connected, broadcast_messages_published_total{topic},
// broadcast_messages_delivered_total{topic},
// broadcast_snapshots_skipped_total{topic},
// broadcast_clients_disconnected_total{reason},
// broadcast_connections_refused_total{reason}, and the poller's
// service_metrics_collected_total, service_metrics_errors_total and
// service_metrics_poll_duration_seconds (const label source).
package broadcast
