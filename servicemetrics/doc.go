// Package servicemetrics composes promflow's packages into the seed's
// service-metrics service (:8005): incidents REST and Alertmanager webhook
// (package incidents), a WebSocket hub on "/" and "/ws" fed by a Prometheus
// poller and the incidents change feed (package broadcast), health and
// readiness routes, its own /metrics, and the dashboard page.
//
// Call [New] with a [Config], serve [Server.Handler], and call
// [Server.Close] on shutdown: it stops the poller and the change feed and
// closes every WebSocket client with 1001. All methods are safe for
// concurrent use.
//
// # Replicas
//
// Several replicas may serve one database: each subscribes to the
// incidents change feed (PostgreSQL LISTEN/NOTIFY), so a change made
// through any replica, or by any other writer, reaches the WebSocket
// clients of every replica on topic "incident", in commit order. When a
// replica's LISTEN connection drops it reconnects with backoff and then
// sends its clients {"type":"incident","data":{"kind":"resync"}}: changes
// made while it was not listening are not replayed, so a client refetches
// what it shows from the REST API on that message (the dashboard does);
// with that, no change is lost, and every later change arrives as an event.
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
// It is shared by examples/servicemetrics and examples/pipeline.
package servicemetrics
