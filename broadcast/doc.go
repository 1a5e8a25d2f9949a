// Package broadcast is a WebSocket hub: it fans JSON messages published by
// the server out to browsers, built on github.com/coder/websocket. It is
// generic: it knows nothing of Prometheus or of what is published.
//
// Start with [NewHub] (the zero [HubOptions] work: one event topic,
// [DefaultTopic]). A [Hub] is an http.Handler: mount it on a route, and use
// [IsWebSocketUpgrade] to serve a page on the same route. Publish with
// [Hub.Publish] (a value encoded as JSON) or [Hub.PublishRaw] (JSON bytes);
// [Hub.RetainRaw] sets a snapshot topic's latest message without sending it.
// Stop it with [Hub.Shutdown] (close handshake with 1001, bounded by ctx) or
// [Hub.Close] (immediate); http.Server.Shutdown does not close hijacked
// WebSocket connections.
//
// # Protocol
//
// A client first receives
//
//	{"type":"connection","message":"connected","timestamp":"2026-01-02T15:04:05.000Z"}
//
// (the message is HubOptions.ConnectMessage), then the latest message of
// every snapshot topic it is subscribed to: at once, or, with
// HubOptions.SnapshotDelay, right after its first message or when the delay
// ends, whichever is first (for clients that read only the welcome and
// close). Every JSON message it sends is answered with
// {"type":"ack","requestType":"<its type>","timestamp":...}.
// {"type":"subscribe","topics":["news"]} and
// {"type":"unsubscribe","topics":[...]} change what it receives: all topics
// by default; the first subscribe narrows that to the topics listed, later
// ones add to them; a subscribe without "topics" (such as
// {"type":"subscribe","channel":"metrics"}) is acked and changes nothing.
// {"type":"resync"} brings the latest snapshots again, after the ack.
// A request naming an unknown topic is answered with
// {"type":"error","requestType":...,"error":...} and changes nothing. A
// binary message closes the client with 1003, a malformed one (not a JSON
// object with a string "type") with 1007, one bigger than the read limit
// with 1009.
//
// Compression is off by default: no extension is negotiated. With
// HubOptions.Compression, permessage-deflate (RFC 7692) is negotiated with
// every client that offers it (Chromium and Firefox do), without context
// takeover either way (the answer is "permessage-deflate;
// client_no_context_takeover; server_no_context_takeover"): a message of
// 256 bytes or more goes to such a client compressed, smaller ones and
// messages that do not shrink as they are; other clients get every message
// uncompressed. A client's compressed messages are decompressed, and the
// read limit applies to their decompressed size.
//
// # Guarantees
//
// A topic is a [SnapshotTopic] or an [EventTopic]. On a snapshot topic only
// the newest message matters: a slow client skips stale ones and its queue
// never grows. On an event topic a client gets every message, in order; a
// client more than EventQueueSize messages behind is disconnected with 1008
// rather than silently missing one. Each publish is encoded once and all
// clients share the same bytes; with Compression it is compressed at most
// once more, on its first delivery to a client that negotiated
// permessage-deflate, and all such clients share the compressed bytes.
//
// Publish never blocks on clients, and a slow client never holds up the
// others. A client that does not take a write within WriteTimeout, or does
// not answer a ping within PingTimeout, is disconnected. Upgrades beyond
// MaxClients get 503, disallowed origins 403, a refused Authorize hook 403
// or its [*HTTPError] status.
//
// # Concurrency
//
// All Hub methods are safe for concurrent use. Shutdown and Close are
// idempotent and return when every goroutine the hub started has exited.
// An idle client costs one goroutine and about 16 KB (4 KB more once it
// has sent a compressed message); writer goroutines exist only while
// messages are pending.
//
// # Metrics
//
// A Hub is a prometheus.Collector: register it to expose
// broadcast_clients_connected, broadcast_messages_published_total{topic},
// broadcast_messages_delivered_total{topic},
// broadcast_snapshots_skipped_total{topic},
// broadcast_clients_disconnected_total{reason} and
// broadcast_connections_refused_total{reason}.
//
// How the hub writes (prepared frames, writer pool, the Linux send path) is
// described in docs/design.md; figures are in BENCHMARKS.md.
package broadcast
