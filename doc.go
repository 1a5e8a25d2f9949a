// Package promflow is the map of the promflow module: an embeddable Go
// library, with example servers, for the observability pipeline
//
//	simulated metrics → Prometheus → incidents and live dashboards
//
// The module is four small packages that stand on their own and compose:
//
//   - [github.com/promflow/promflow/mockexporter]: a registry of simulated
//     metrics (constant, ramp, sine, flapping, spike, random walk, timed
//     scenarios, faults) that is a prometheus.Collector and serves the seed's
//     /simulate routes plus a JSON control API. Start with mockexporter.New.
//   - [github.com/promflow/promflow/promquery]: a typed client for the
//     Prometheus HTTP API, with a safe PromQL selector builder. Start with
//     promquery.New.
//   - [github.com/promflow/promflow/incidents]: incidents in PostgreSQL with a
//     lifecycle, Alertmanager webhook intake, MTTA/MTTR per service kept fast
//     by trigger-maintained rollups, a LISTEN/NOTIFY change feed and REST
//     handlers. Start with incidents.Migrate and incidents.NewStore.
//   - [github.com/promflow/promflow/broadcast]: a WebSocket hub on
//     coder/websocket that fans messages out to browsers, and a Poller that
//     publishes Prometheus query results every interval. Start with
//     broadcast.NewHub.
//
// Dependencies point downward only: broadcast may use promquery; incidents and
// mockexporter stand alone. The examples directory holds mains that compose
// them into the seed's services: mock-metrics on :8082
// (examples/mockmetrics), service-metrics on :8005 with its REST API,
// WebSocket broadcast and dashboard (examples/servicemetrics), and the whole
// pipeline with Prometheus and Alertmanager in one command
// (examples/pipeline).
package promflow
