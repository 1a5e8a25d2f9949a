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
//
// It is shared by examples/servicemetrics and examples/pipeline.
package servicemetrics
