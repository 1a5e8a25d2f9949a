// Package localserver starts and stops the real Prometheus and Alertmanager
// processes that the promflow tests and the pipeline example need.
//
// Call [StartPrometheus] or [StartAlertmanager] with a config; each writes a
// generated configuration into the data directory the caller owns, starts the
// binary on the requested address and returns once the server reports ready.
// [Process.Stop] is idempotent and safe to call from several goroutines.
//
// Configurations are rendered as JSON (which YAML parsers accept), so no value
// a caller supplies can change the structure of the generated file.
//
// The package is internal: it is shared by internal/testutil and
// examples/pipeline and is not part of promflow's public API.
package localserver
