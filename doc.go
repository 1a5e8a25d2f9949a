// Package promflow is the map of the promflow module: Go libraries, a test
// harness and example servers for the observability pipeline
//
//	simulated metrics → Prometheus → Alertmanager → incidents and live dashboards
//
// This package has no code. The module's packages:
//
//   - [github.com/promflow/promflow/mockexporter]: a registry of simulated
//     metrics (constant, ramp, sine, spike, random walk, timed scenarios,
//     faults) that is a prometheus.Collector and serves /metrics, the
//     seed's /simulate routes and a JSON control API. Start with
//     mockexporter.New.
//   - [github.com/promflow/promflow/promquery]: a typed client for the
//     Prometheus HTTP API and a safe PromQL selector builder. Start with
//     promquery.New.
//   - [github.com/promflow/promflow/incidents]: incidents in PostgreSQL with
//     a lifecycle, Alertmanager webhook intake, MTTA/MTTR per service, a
//     change feed and REST handlers. Start with incidents.Migrate and
//     incidents.NewStore.
//   - [github.com/promflow/promflow/broadcast]: a generic WebSocket hub that
//     fans JSON messages out to browsers, with snapshot and event topics.
//     It does not import promquery. Start with broadcast.NewHub.
//   - [github.com/promflow/promflow/servicemetrics]: the service-metrics
//     service (:8005) as a library, to mount in your own server: incidents
//     REST and webhook, the WebSocket hub fed by a Prometheus poller (which
//     lives here, not in broadcast) and by the incidents change feed, and
//     the dashboard. Start with servicemetrics.New and a servicemetrics.Config.
//   - [github.com/promflow/promflow/promflowtest]: the public test harness,
//     for your own go test: a real Prometheus, Alertmanager, webhook
//     receiver, test database, mock exporter and the whole pipeline on free
//     ports, each stopped by t.Cleanup, with waits that report what they
//     last saw. A missing binary skips the test, or fails it when CI is set.
//   - examples/mockmetrics, examples/servicemetrics and examples/pipeline:
//     thin mains for the seed's mock-metrics (:8082), service-metrics
//     (:8005) and the whole pipeline in one command. They import only
//     public packages.
//
// # How they compose
//
// Dependencies point downward only. The leaves (mockexporter, promquery,
// incidents, broadcast) import no other promflow package. servicemetrics
// composes broadcast, promquery and incidents. promflowtest may use every
// library. Nothing imports promflowtest but tests and examples.
//
// # Conventions
//
// Every package follows one naming rule:
//
//   - a constructor takes an Options struct (XxxOptions where a package
//     has several, as broadcast.HubOptions); a whole service's
//     configuration is a Config (servicemetrics.Config);
//   - zero values work: a zero field takes a documented default; only what
//     cannot be defaulted (servicemetrics.Config's Prometheus URL and
//     database pool) is required;
//   - Close() is immediate, Shutdown(ctx) graceful, as in net/http;
//   - calls that block take a context.Context first.
//
// Implementation notes are in docs/design.md, benchmark figures in
// BENCHMARKS.md.
package promflow
