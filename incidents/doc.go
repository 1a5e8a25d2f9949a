// Package incidents stores incidents in PostgreSQL and answers the questions
// an on-call team asks of them: how many are open per service, how long
// they take to acknowledge (MTTA) and to resolve (MTTR), and what changed.
//
// # Getting started
//
// Call [Migrate] once at start-up (it is idempotent and safe to run from
// several processes at once), then build a [Store] on the pool and use it,
// its HTTP API, its change feed and its Prometheus collector:
//
//	if err := incidents.Migrate(ctx, pool); err != nil { ... }
//	store := incidents.NewStore(pool, incidents.Options{})
//	mux.Handle("/api/", store.Handler())           // REST + Alertmanager webhook
//	prometheus.MustRegister(incidents.NewCollector(store, incidents.CollectorOptions{}))
//	sub, err := store.Subscribe(ctx, incidents.SubscribeOptions{})
//	defer sub.Close()
//	for ev := range sub.Events() { ... }          // forward to WebSocket clients
//
// # Concurrency
//
// A Store, its handlers and a Collector are safe for concurrent use and own
// no goroutines; the pool is the caller's to close. A [Subscription] owns one
// goroutine and one dedicated connection until [Subscription.Close], which is
// idempotent.
//
// # Lifecycle
//
// An incident is opened (status open), acknowledged (open → acknowledged),
// resolved (open or acknowledged → resolved) and possibly reopened (resolved
// or closed → open). Every transition is one guarded UPDATE, so concurrent
// callers cannot both win; an action the current status does not allow is a
// [*StateError] (errors.Is(err, [ErrWrongState])), an unknown id is
// [ErrNotFound]; the status a StateError names is one that forbids the
// action, even under concurrent transitions. The first acknowledgement
// time survives a reopen and a
// second acknowledgement. Lifecycle times come from Options.Now (default
// time.Now) and are never earlier than the incident's creation.
//
// # Definitions
//
//   - time to acknowledge = first acknowledgement − creation. MTTA is its
//     mean over the incidents that have been acknowledged; incidents never
//     acknowledged are excluded and reported as a count (unacknowledged)
//     and an ack rate (acknowledged / all).
//   - time to resolve = resolution − creation. MTTR is its mean over the
//     incidents that have a resolution time; incidents not yet resolved
//     (status open or acknowledged) are reported as a count, still_open.
//   - reopening clears the resolution time and keeps the first
//     acknowledgement. So while reopened an incident counts as still open
//     and is left out of MTTR (it still counts in MTTA); once resolved again
//     its time to resolve is the last resolution − creation, the reopened
//     period included. The statistics agree with a plain recomputation over
//     the incidents table (resolved_at − created_at where resolved_at is set).
//   - windows select incidents by creation time, [from, to); p50, p90 and p99
//     are given next to the means, per service (the source column) and
//     overall. Percentiles interpolate between ranks like PostgreSQL's
//     percentile_cont.
//   - by-service counts are by current status; total_incidents includes
//     closed incidents, so it can exceed open + ack + resolved.
//
// # Cost
//
// Triggers on the incidents table keep per-service and per-day rollups up
// to date, whoever writes the table (this package, psql, another program),
// so the statistics do not scan the incidents:
//
//   - [Store.ByService] and all-time [Store.Stats] read one row per service;
//   - windowed Stats read one row per service and day plus the incidents of
//     the window's two partial days, in one statement: counts and means are
//     exact for any window;
//   - percentiles are exact when the window holds at most
//     Options.ExactPercentileLimit (default 10,000) incidents, otherwise
//     estimated within [PercentileRelativeError] (≈ 4.43%) for durations
//     from 1/16 s to about 2.1 years and within [PercentileAbsoluteError]
//     (1/32 s) below; Stats.ApproximatePercentiles says which was used;
//   - [Store.Details] is an index walk with keyset pagination.
//
// The triggers cost about a millisecond per one-row statement. For bulk
// loads, disable them (ALTER TABLE incidents DISABLE TRIGGER USER) and call
// [Store.RebuildRollups] afterwards. Single-statement transactions, which is
// all this package issues, cannot deadlock on the rollups; multi-statement
// transactions of other programs can, as on any shared row, and are then
// retried. docs/design.md describes the triggers.
//
// # Alertmanager
//
// [NewWebhookHandler] (also mounted by [NewHandler] at
// POST /api/alertmanager/webhook) accepts webhook payload version 4. A firing
// alert opens one incident per firing episode — fingerprint plus startsAt —
// so repeated notifications open nothing new; a resolved alert resolves it.
// Each alert is applied by one idempotent statement, so a message that fails
// half way is completed, without duplicates, when Alertmanager retries it.
// Title, severity, description and service are taken from labels and
// annotations as [IntakeOptions] says.
//
// # Change feed
//
// Triggers pg_notify every row change on [NotifyChannel] with a small
// payload (kind, id, status); [Store.Subscribe] LISTENs on a dedicated
// connection, fetches the row and delivers typed [Event]s, reconnecting with
// backoff (and delivering an [EventResync]) when the connection drops.
//
// # Errors
//
// Errors wrap [ErrNotFound], [ErrInvalid] ([*ValidationError]),
// [ErrWrongState] ([*StateError]) or [ErrUnavailable] (the database could not
// be reached); the HTTP handlers map them to 404, 400, 409 and 503 and never
// put SQL in a response.
package incidents
