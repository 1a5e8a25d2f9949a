// Package promflowtest is a test harness for alerting, in the pattern of
// net/http/httptest: real Prometheus, Alertmanager and PostgreSQL for a Go
// test, on free loopback ports, stopped at t.Cleanup, so that the whole
// chain — a metric changes, a rule fires, Alertmanager routes, groups and
// inhibits, a receiver gets the notification, an incident opens — is
// tested for real in `go test`.
//
// # What to call first
//
// For one piece at a time, start what the test needs; each takes a
// testing.TB and an options struct whose zero value works:
//
//   - [MockExporter]: simulated metrics (a mockexporter.Registry) to scrape;
//   - [Prometheus]: a prometheus process with a generated config (scrape
//     targets, rule files or rule text, intervals, Alertmanagers, flags);
//     its handle has a *promquery.Client;
//   - [Receiver]: a webhook receiver that records every notification;
//   - [Alertmanager]: a prometheus-alertmanager process with the test's own
//     config (raw YAML) or a default that sends everything to a Receiver;
//     [CreateSilence] and [ExpireSilence] manage silences on it;
//   - [Database] / [DatabaseURL]: a fresh PostgreSQL database, dropped at
//     cleanup;
//   - [VictoriaMetrics]: a single-node VictoriaMetrics (Debian package
//     victoria-metrics) with a temporary storage, scraping
//     VictoriaMetricsOptions.ScrapeConfigs itself and accepting remote
//     write on its WriteURL ([PrometheusOptions].RemoteWrite points a
//     Prometheus there);
//   - [Prometheus3Binary]: a Prometheus 3 ([Prometheus3Version]) built
//     from the Go module proxy into [Prometheus3Path] (or
//     $PROMFLOW_PROMETHEUS3), to pass as [PrometheusOptions].Binary;
//     missing, the test skips with the `go install` command
//     ([Prometheus3InstallCommand]) and fails in CI, whose .ci/run builds
//     it once into that cache directory.
//
// For the whole flow, [Pipeline] starts all of them plus service-metrics
// (incidents, REST, WebSocket) with the test's rules and routes, and [Suite]
// does so once per testify suite. [RuleTest] runs `promtool test rules` and
// reports each failing case as a test error.
//
// Then wait, never sleep: [WaitAlertFiring], [WaitAlertResolved],
// [WaitAlertmanagerAlert], [WaitQuery], [ReceiverServer.WaitNotification],
// [WaitIncidentOpened] and [WaitIncidentResolved] (also as methods of the
// handles) poll until the condition holds or the context ends; [WaitContext]
// gives a context bounded by [DefaultWaitTimeout].
//
// # Supervision and fault drills
//
// [StartPipeline] and [Pipeline] keep their Prometheus and Alertmanager
// children running: one that exits is started again with backoff (250 ms
// doubling to 10 s, back to 250 ms after 30 s up) on the same address and
// data directory, its outage logged and reported by service-metrics'
// /ready (prometheus, alertmanager, postgres), while the rest keeps
// serving. [RunningPipeline.Err] reports only what cannot recover: an
// in-process server that fails, or a child that could not be started again
// (10 failed starts in a row, or its binary gone). PostgreSQL may be down
// at start or go away: service-metrics answers 503 meanwhile and catches
// up when it is back. Prometheus is started without its lifecycle and
// admin APIs ([PipelineOptions].PrometheusLifecycle turns them on) and
// answers CORS for local pages only ([LoopbackOrigins]). A fault drill
// kills a child with [RunningPipeline.Process] and [Process.Kill], then
// waits for another process ([RunningPipeline.Restarts]).
//
// # Backends: where service-metrics reads
//
// [PipelineOptions].Backend chooses the topology. [BackendPrometheus] (the
// default): one Prometheus scrapes mock-metrics, service-metrics and
// itself, evaluates the alert rules, sends alerts to Alertmanager, and
// answers service-metrics' queries. [BackendVictoriaMetrics] (`go run
// ./examples/pipeline -backend victoriametrics`):
//
//	mock-metrics ─scrape─▶ Prometheus ─remote_write─▶ VictoriaMetrics ◀─query─ service-metrics
//	                        │ rules, alerts                              ▲
//	                        └─▶ Alertmanager ─webhook─▶ service-metrics ─┘ (incidents in PostgreSQL)
//
// Prometheus stays the scraper and the rule evaluator (target health,
// /api/v1/targets, /api/v1/alerts are its own), and remote-writes every
// sample it scrapes or records (Remote Write 1.0, batches sent at least
// once per scrape interval) to a supervised VictoriaMetrics child
// ([RunningPipeline].VictoriaMetricsURL, default localhost:8428);
// service-metrics polls [RunningPipeline].QueryURL, VictoriaMetrics. The
// seed's 19 checks and the alert loop pass on both (TestSeedE2E,
// TestSeedE2EVictoriaMetrics; [SeedTargets].QueryURL sends the seed's
// three queries to the backend). The same shape holds for any remote-write
// receiver that answers the Prometheus query API (VictoriaMetrics cluster:
// write to vminsert, query vmselect; Thanos Receive + Query; Mimir): set
// the backend's URL as service-metrics' PrometheusURL. Only single-node
// VictoriaMetrics is tested here.
//
// # What is guaranteed
//
//   - Every server listens on loopback, on a port free when it started; a
//     started server answered its readiness endpoint, and a server already
//     on a requested address is reported (ErrAddrInUse), never mistaken for
//     the child.
//   - Everything a helper starts is stopped, and its temporary data
//     removed, at the test's cleanup; a failed test gets the servers' logs.
//   - A missing binary or database skips the test with the Debian package
//     to install, and fails it when the CI environment variable is set
//     ([SkipOrFail]), so CI cannot go green by skipping.
//   - Generated configurations are JSON (which YAML parsers accept), so no
//     value a test supplies changes their structure; a raw config
//     (AlertmanagerOptions.Config, PipelineOptions.AlertmanagerConfig) is
//     used as given and validated by the server at start.
//   - A wait that gives up returns an error wrapping [ErrWaitTimeout] that
//     says what it last saw (the active alerts, the last vector, the
//     notifications received, the incidents).
//
// # What is safe concurrently
//
// Handles may be used from several goroutines: the waits, a
// [ReceiverServer]'s methods, promquery clients and the mockexporter
// registry are safe for concurrent use. Restart a server only from the
// test's goroutine. Each test gets servers of its own, so tests calling
// t.Parallel do not share state; the tests of one [Suite] share its
// pipeline, so they should not run in parallel with each other.
package promflowtest
