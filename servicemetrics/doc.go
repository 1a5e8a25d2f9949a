// Package servicemetrics is the seed's service-metrics service (:8005) as a
// library: the incidents REST API and Alertmanager webhook (package
// incidents), a WebSocket hub on "/" and "/ws" (package broadcast) fed by a
// Prometheus [Poller] and the incidents change feed, health and readiness
// routes, its own /metrics, and the embedded dashboard.
//
// # Getting started
//
// Call [New] with a [Config] (PrometheusURL and Pool are required; every
// other zero field has a working default). The [Server] is an
// http.Handler: serve it (httpedge.NewServer gives an http.Server with
// limits), and on shutdown call [Server.Shutdown] (WebSocket clients get
// 1001) before the http.Server's own Shutdown, which does not close
// hijacked connections; [Server.Close] cuts everything at once.
//
// # Guarantees
//
//   - PostgreSQL may be down at start: the API answers 503 and /ready
//     "connecting" while the service retries with backoff; it migrates and
//     serves once the database is back. A role that cannot write gets a
//     read-only service (writes and the webhook 503, /ready "read-only").
//   - Every state-changing route is guarded (httpedge.Guard): a bearer
//     write token when Config.WriteToken is set, else loopback clients
//     only; cross-site browser writes are refused. Cross-origin reads are
//     answered per Config.CORSOrigins ("*" by default, as the original).
//   - /metrics always answers; a failing collector loses only its own
//     metrics. No response body carries SQL, credentials or addresses.
//
// # WebSocket messages
//
// After {"type":"connection","message":"Connected to service-metrics",...}
// a client gets, on topic and type:
//
//   - instant_metrics: every poll, as soon as the instant queries return,
//     {"timestamp":<evaluation time>,"data":{name:<Prometheus API data> or
//     {"error":...}}} — the original's shape;
//   - range_metrics: each range query's whole window, series numbered by
//     "id", with "seq"; on connect, on {"type":"resync"}, when a window is
//     first filled and every PollerOptions.FullEvery polls;
//   - range_update: the other polls, only the change since seq−1:
//     {"t":T,"added":[{"id","metric"}],"removed":[ids],"points":[[id,"v"]]}
//     per query; a client that sees a gap in "seq" sends {"type":"resync"};
//   - incident: every change of the incidents table, in order, with the row.
//
// The snapshots a client gets on connect follow its first message, or come
// Config.SnapshotDelay (500 ms) after connecting, so that a client of the
// original service that reads the welcome and closes sees nothing else.
//
// # Concurrency
//
// All methods of Server and Poller are safe for concurrent use. A Server
// owns its goroutines (the poller, the change-feed forwarder, the database
// retry loop) and stops them in Shutdown or Close, which are idempotent.
//
// # Replicas
//
// Several replicas may serve one database: each subscribes to the
// incidents change feed (PostgreSQL LISTEN/NOTIFY), so a change made
// through any replica, or by any other writer, reaches the WebSocket
// clients of every replica on topic "incident", in commit order. When a
// replica's LISTEN connection drops it reconnects with backoff and then
// sends its clients {"type":"incident","data":{"kind":"resync"}}, followed
// by the incidents changed while it was not listening, each as its current
// state with "catch_up": true (up to 1000; past that a client refetches
// from the REST API on "resync", as the dashboard does): no change is lost.
//
// Behind PgBouncer in transaction pooling mode, give Config.Pool's URL
// default_query_exec_mode=cache_describe (or exec, or simple_protocol;
// pgx's default prepared statements fail there) and set Config.ListenURL
// to a direct PostgreSQL URL: the LISTEN connection and the schema
// migration use it, the queries go through PgBouncer. For example
//
//	DATABASE_URL=postgres://app@pgbouncer:6432/incidents?default_query_exec_mode=cache_describe
//	LISTEN_DATABASE_URL=postgres://app@postgres:5432/incidents
//
// (examples/servicemetrics: -database-url and -listen-database-url).
//
// # Dependencies down
//
// PostgreSQL need not be up: New retries in the background with backoff
// (the incidents API and /ready answer 503 meanwhile) and migrates when it
// comes back; an outage later gives 503s with a short message, never the
// database's user, name or address, and /metrics keeps answering with
// what it has. Topic "incident" loses no change across an outage of the
// change feed: after its "resync" event come the incidents changed while
// it was disconnected, each as its current state with "catch_up": true
// (up to 1000; past that, refetch the REST API on "resync").
package servicemetrics
