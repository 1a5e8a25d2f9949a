// Package testutil gives promflow tests real servers: a PostgreSQL database of
// their own, Prometheus and Alertmanager processes on free ports, and a
// polling [Eventually].
//
// Every helper registers its cleanup with t.Cleanup. When a server or binary
// is missing, the helper skips the test with the Debian package to install;
// when the CI environment variable is set it fails the test instead, so that
// CI can never go green by skipping.
package testutil
