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
// A role that may only read can serve reads: Migrate succeeds on a current
// schema without writing, [Writable] tells whether the role can write, and
// [HandlerOptions].ReadOnly (IntakeOptions.ReadOnly for [NewWebhookHandler])
// makes the write routes answer 503 {"status":"error","error":"read-only: ..."}
// while reads work:
//
//	writable, err := incidents.Writable(ctx, pool)
//	h := incidents.NewHandler(store, incidents.HandlerOptions{ReadOnly: !writable})
//
// [Store.Trends], [Store.Breakdown] and [Store.Noise] answer analytics
// questions ("Analytics" below); [NewAnalyticsCollector] exports windowed
// figures for alerting on incident health.
//
// [LoadDemo] loads the seed report's demo data set (idempotent).
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
// resolved (open or acknowledged → resolved), closed (resolved → closed,
// [Store.CloseIncident], POST /api/incidents/{id}/close: done and archived,
// its resolution kept; an open or acknowledged incident must be resolved
// first) and possibly reopened (resolved or closed → open). Every transition
// is one guarded UPDATE, so concurrent callers cannot both win; an action
// the current status does not allow is a [*StateError] (errors.Is(err,
// [ErrWrongState]), HTTP 409), an unknown id is [ErrNotFound] (404), an id
// that is not a UUID [ErrInvalid] (400); the status a StateError names is
// one that forbids the action, even under concurrent transitions. The first
// acknowledgement time survives a reopen and a second acknowledgement.
// Lifecycle times (created_at, acknowledged_at,
// resolved_at, updated_at) come from one clock, Options.Now (default
// time.Now), whoever triggers the change (REST, webhook, reconciliation),
// and are never earlier than the incident's creation; so MTTA and MTTR are
// never negative, nor zero by mixing clocks. Alertmanager's own times are
// kept apart: startsAt (Incident.StartsAt, JSON starts_at and
// alert_starts_at) and endsAt of the resolved notification
// (Incident.AlertEndsAt, alert_ends_at), for time-to-detect. Who resolved
// an incident is Incident.ResolvedBy ("api", "alertmanager",
// "reconciliation"), why in words Incident.ResolutionNote.
//
// Severities are one of [Severities] (critical, high, warning, medium, low,
// info): the REST API refuses others with 400 (case-insensitively accepted,
// stored in lower case), the Alertmanager intake maps others to
// IntakeOptions.DefaultSeverity (default warning). Rows other programs wrote
// with other severities are read as they are.
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
//     period included. The rollups and a plain recomputation over the base
//     table (resolution − creation where there is a resolution) agree by
//     construction, since both read the same columns.
//   - rows written by other programs (see "Shared tables") follow the same
//     rules through two definitions: an incident's service is its source,
//     or "unknown" when source is NULL; its resolution time is resolved_at
//     when its status is resolved or closed, and none otherwise. So a row
//     the original platform reopened (status open, resolved_at kept) counts
//     as still open, has no time to resolve and is reported with
//     resolved_at null, exactly like one promflow reopened; a row
//     acknowledged without acknowledged_at counts in ack_count but has no
//     time to acknowledge; a row resolved without resolved_at counts as
//     resolved but not in MTTR. The rollups, every query of this package,
//     the API and the change feed use these definitions.
//   - windows select incidents by creation time, [from, to); p50, p90 and p99
//     are given next to the means, per service (the source column) and
//     overall. Percentiles interpolate between ranks like PostgreSQL's
//     percentile_cont.
//   - by-service counts are by current status; total_incidents includes
//     closed incidents, so it can exceed open + ack + resolved.
//
// # Analytics
//
// [Store.Trends], [Store.Breakdown] and [Store.Noise] (routes trends,
// breakdown and noise under /api/metrics/incidents/, see
// [NewAnalyticsHandler]; CSV with format=csv or Accept: text/csv) and the
// [AnalyticsCollector] answer over the incidents created in a window or
// bucket (a cohort by creation time, as the definitions above), with these
// measures:
//
//   - opened (total in a breakdown): incidents created in the bucket,
//     whatever their status now, closed and reopened ones included; rows
//     deleted from the table no longer count anywhere (the rollups follow
//     every DELETE and TRUNCATE).
//   - acknowledged: those with a first acknowledgement time; ack_rate =
//     acknowledged / opened. A never-acknowledged incident counts in opened
//     only: it is out of MTTA and counts as not acknowledged within target.
//   - resolved: those with a resolution time (the rule above: resolved or
//     closed with resolved_at). Still-open incidents (opened - resolved,
//     including reopened ones not resolved again) are out of MTTR and count
//     as not resolved within target.
//   - MTTA, MTTR: the means above, with p50 and p90 (mtta_p50_seconds, ...).
//   - MTTD, time to detect = creation - the alert's startsAt (the starts_at
//     column Alertmanager intake stores), over alert-backed incidents only
//     (detected counts them); an alert whose startsAt is after the
//     incident's creation (clock skew) counts 0. With p50 and p90.
//   - mttr_from_start = resolution - startsAt, the other convention of time
//     to resolve, over alert-backed resolved incidents, clamped at 0 the same
//     way; MTTR stays resolution - creation.
//   - ack_within_ratio = incidents acknowledged within ack_within (time to
//     acknowledge <= the target) / opened; resolve_within_ratio likewise with
//     resolve_within (defaults 5m and 1h).
//   - auto_resolved: resolved and never acknowledged (alerts that cleared by
//     themselves, or were closed without anyone acknowledging).
//   - reopened: incidents reopened at least once: a trigger counts every
//     change from resolved or closed back to open or acknowledged, by any
//     writer, in the reopen_count column (reopens before schema version 6
//     are not known and count 0). A reopened incident's MTTA keeps its first
//     acknowledgement; its MTTR is the last resolution's, as above.
//
// Trend buckets are local days, ISO weeks (from Monday) or months of an IANA
// zone: each starts at local midnight, so DST days have 23 or 25 hours, and
// bucket_start is written in the zone's offset (2026-03-30T00:00:00+02:00).
// The window is widened to whole buckets; every bucket is present, empty
// ones with zero counts and null means and ratios; with group_by every
// service (severity) that has an incident in the window has every bucket.
// Breakdown groups are services (NULL source: "unknown"), severities or the
// values of a label (label:team; incidents without the label form the group
// ""), sorted (sort, order; nulls last, then by key) and paged (limit,
// cursor). The noise answer is the breakdown by alertname, busiest first,
// with each name's share of the window.
//
// Cost. Migration 0006 adds incident_rollup_analytics: per UTC day, ISO
// week, month and all time, per service and per severity, counts, sums,
// the counts within the targets 1m, 5m, 15m and 1h (acknowledge) and 30m,
// 1h, 4h and 24h (resolve), and histograms of the three durations, kept
// exact for every writer by statement triggers like the other rollups
// (RebuildRollups rebuilds it too). A trend or breakdown reads the rollup
// rows of its grain between the UTC unit bounds nearest to its own bounds,
// and corrects each bound with the base-table rows between it and that
// unit bound (at most 12 hours, the zone's offset for trends), through an
// index-only scan (the raw times; the measures are computed in Go, binned
// with the server's own slot boundaries). Migrations 0007 and 0008 add one
// packed column per rollup row (histograms with counters as narrow as the
// row's total allows), which the reads fetch instead of 24 columns.
// An all-time breakdown by service or severity fetches only the rollup
// rows that changed since the Store's previous one (it keeps the rows it
// read, with their versions; the answer is the same as a full read), and
// when migration 0009's rollup version shows that no rollup row has changed
// since, it answers from the sorted rows it computed then, after reading
// that one counter (a page is a copy the caller may change).
// Counts and means are then exact for any window and zone; when the window holds at most Options.ExactPercentileLimit
// incidents, everything is computed exactly from the base table instead.
// Otherwise percentiles carry the histogram bound of [PercentileRelativeError]
// and approximate is true; within-target shares are exact for the targets
// above and, for other targets, estimated from the histograms (off by at
// most the share of the one histogram bucket, 2^(1/8) wide, holding the
// target). Breakdowns by label and by severity of one service have no
// rollup and scan the window's incidents (exact).
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
// # Shared tables
//
// The incidents table may be shared with other writers, notably the
// original platform's incident-management, which keeps working next to
// promflow. When Migrate finds an incidents table and no promflow migration
// recorded, it adopts the table (migrations/adopt/0001_adopt.sql instead of
// 0001_schema.sql) without rewriting or rejecting a row of the original
// schema: columns keep their types, id gets a default (gen_random_uuid())
// only if it has none, source, labels and description stay nullable (a NULL
// source is never rewritten; it reads as "unknown"), extra columns (such as
// ack_token and resolve_token), tables (alerts, incident_alerts, engineers)
// and indexes are left alone, and promflow's checks (status is one of the
// four, times not before creation, an Alertmanager episode has both keys)
// are added NOT VALID, so only new writes are checked. (A NULL in title,
// severity, status, created_at or updated_at, which the original schema does
// not allow, is filled as version 1 does.) On every database, version 4
// drops the checks that tie status to timestamps, since the original writes
// rows where they disagree, and gives tables promflow created the nullable
// ack_token and resolve_token columns, so the original's INSERT and UPDATE
// statements succeed on either. The definitions above decide how such rows
// count. Times in this package's JSON are in [TimeLayout], JavaScript's
// toISOString() form, as the original's clients expect.
//
// # Alertmanager
//
// [NewWebhookHandler] (also mounted by [NewHandler] at
// POST /api/alertmanager/webhook) accepts webhook payload version 4. A firing
// alert opens one incident per firing episode — fingerprint plus startsAt —
// so repeated notifications open nothing new; a resolved alert resolves it.
// Each alert is applied by idempotent statements, so a message that fails
// half way is completed, without duplicates, when Alertmanager retries it.
// Title, severity, description and service are taken from labels and
// annotations as [IntakeOptions] says.
//
// Out of order: a resolved notification that arrives before its firing one
// (in an earlier message, or earlier in the same message) records the
// episode as an incident that is already resolved — ResolvedBy
// "alertmanager", no resolution time (promflow never saw it open, so it has
// no time to resolve and stays out of MTTR; the rollups count it as
// resolved), alert_starts_at and alert_ends_at say when it fired — and the
// firing notification, when it comes, opens nothing. A resolved notification
// is final for its episode: a later firing one with the same fingerprint and
// startsAt changes nothing, unless the incident was resolved by
// reconciliation (below), which the firing notification proves wrong: it
// reopens it (IngestResult.Reopened).
//
// Reconciliation: an incident whose alert stopped firing while no
// notification could reach promflow would stay open forever. Call
// [ReconcileAlertmanager] at start (after the webhook is served): it reads
// Alertmanager's active alerts (GET /api/v2/alerts) and [Store.Reconcile]
// resolves the open and acknowledged alert-backed incidents whose episode
// is not among them, at the reconciliation time (no time is invented: their
// time to resolve is an upper bound), with ResolvedBy "reconciliation" and
// the note "resolved by reconciliation: alert no longer active in
// Alertmanager at <time>".
//
// # Input
//
// Bad input is a 400 (413 for a body over the limit) naming the problem, and
// changes nothing: text that is not UTF-8, holds NUL or a lone UTF-16
// surrogate escape (which encoding/json would silently turn into U+FFFD),
// anywhere in a JSON body or a query parameter; data after the JSON value;
// numbers that are not plain decimal integers where one is meant; times out
// of range; unknown statuses and severities; ids that are not UUIDs.
//
// Times this package writes and accepts lie in years 1 to 9999 UTC (the
// range of RFC 3339 and of toISOString's plain form). Schema version 5 adds
// the check incidents_times_within_years_1_to_9999, NOT VALID, so other
// writers' inserts and updates with 'infinity', '-infinity' or a year
// outside that range are refused with that name as the message before any
// trigger runs, while rows written before stay and are read: a time outside
// years 0-9999 is written with a sign and six year digits, as toISOString
// does (+010000-01-01T00:00:00.000Z). Changing such a row through this
// package is a 400.
//
// # Change feed
//
// Triggers pg_notify every row change on [NotifyChannel] with a small
// payload (kind, id, status); [Store.Subscribe] LISTENs on a dedicated
// connection, fetches the row and delivers typed [Event]s, reconnecting with
// backoff (and delivering an [EventResync]) when the connection drops.
// Every subscriber on the database gets every change, whichever process
// made it, in commit order: several replicas of a service each subscribe
// and each push the same events to their own clients.
//
// Guarantee: every change committed after Subscribe returns is delivered
// as an event, except while the LISTEN connection is down. Notifications
// are not stored, so changes made then are not replayed; instead the feed
// delivers [EventResync] once it LISTENs again, and every change committed
// after that is delivered as an event again. A consumer that refetches
// what it shows when it gets EventResync (a read started after receiving it
// sees every change committed before the feed listened again) therefore
// misses nothing.
// A silent connection (a peer gone without closing it) is pinged after
// SubscribeOptions.PingInterval (30 s) and replaced if it does not answer.
// The LISTEN connection's application_name is
// "promflow-incidents-listener", to find it in pg_stat_activity.
//
// # PgBouncer
//
// Behind PgBouncer in transaction pooling mode (pool_mode = transaction),
// which neither delivers notifications nor keeps session state:
//
//   - give the pool default_query_exec_mode=cache_describe (or exec, or
//     simple_protocol) in its URL, e.g.
//     postgres://app@pgbouncer:6432/db?default_query_exec_mode=cache_describe:
//     pgx's default, cache_statement, uses named prepared statements, which
//     fail there ("prepared statement ... already exists" or "does not
//     exist") before PgBouncer 1.21's max_prepared_statements.
//     cache_describe keeps binary results and one round trip per query
//     (after a statement's first use; restart after a schema change);
//   - LISTEN on a direct connection to PostgreSQL:
//     SubscribeOptions.ListenConnString;
//   - run [Migrate] on a direct connection: its session-level advisory lock
//     does not survive transaction pooling, and concurrent migrations
//     through PgBouncer collide or hang.
//
// Session pooling (pool_mode = session) needs none of this.
//
// # Errors
//
// Errors wrap [ErrNotFound], [ErrInvalid] ([*ValidationError]),
// [ErrWrongState] ([*StateError]), [ErrUnavailable] (the database could not
// be reached) or [ErrReadOnly] (the role or the database may not write); the
// HTTP handlers map them to 404, 400, 409, 503 and 503 ("read-only: ...")
// and never put SQL in a response.
package incidents
