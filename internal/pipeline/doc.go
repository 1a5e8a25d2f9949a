// Package pipeline brings up the whole promflow flow in one process tree:
// mock-metrics, Prometheus (a child process with a generated config and the
// shipped alert rules), Alertmanager (a child process whose webhook points at
// service-metrics) and service-metrics on PostgreSQL.
//
// Call [Start] with a [Config] (the zero value uses the seed's ports and the
// local PostgreSQL) and [Pipeline.Close] to stop every child and remove the
// temporary data. Components given by URL (an external Prometheus,
// Alertmanager or database) are used as they are and not started.
// [Pipeline.Err] reports a component that stops on its own. Close is
// idempotent and safe to call from any goroutine; the exported fields are
// set by Start and only read afterwards.
//
// It is shared by examples/pipeline and the end-to-end tests; it is internal
// because its shape follows the examples, not a stable API.
package pipeline
