// Package harness is an example of a project outside promflow that tests
// its alerting with github.com/promflow/promflow/promflowtest, using only
// the public API: its rules (rules.yml, unit-tested by rules_test.yml) and
// its Alertmanager routes (alertmanager.yml) run against a real
// Prometheus, Alertmanager and service-metrics in harness_test.go.
//
// Run it from this directory with go test ./... (it needs the Debian
// packages prometheus and prometheus-alertmanager and a PostgreSQL server,
// see promflow's README).
package harness
