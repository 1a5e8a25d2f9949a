// Package testutil holds the promflow project's own test-only helpers: a
// polling [Eventually], [SkipOrFail] (skip locally, fail when CI is set),
// free ports, the Chromium lookup of the browser tests and [PgBouncer], a
// real pgbouncer process in front of a test database.
//
// It imports no promflow package, so that the in-package tests of every
// library (broadcast's, for one) can use it; promflowtest, the public
// harness, builds its skip-or-fail on it. Real servers for tests (a
// database, Prometheus, Alertmanager, the pipeline) come from promflowtest.
package testutil
