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
// It is shared by examples/servicemetrics and examples/pipeline.
package servicemetrics
