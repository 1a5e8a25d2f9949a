// Package promquery is a typed client for the Prometheus HTTP API and a safe
// way to build PromQL selectors from untrusted values.
//
// Start with [New], which returns a [*Client] for one Prometheus server. A
// Client is safe for concurrent use; create one and share it. It owns no
// goroutines; [Client.Close] only releases idle connections. Every call
// that talks to the server takes a context first and stops as soon as the
// context ends.
//
// There is one call per question and each returns a Go type, never a
// model.Value to type-switch on: [Client.Vector] and [Client.Scalar] for
// instant queries, [Client.Query] when the result type is not known in
// advance (it also handles string results), [Client.Matrix] for range
// queries and [Client.StreamMatrix] to receive a big range result one series
// at a time. [Client.QueryRaw] and [Client.QueryRangeRaw] keep the answer's
// "data" verbatim for callers that forward it as JSON. [Client.Series],
// [Client.LabelNames], [Client.LabelValues], [Client.Targets], [Client.Rules],
// [Client.Alerts], [Client.Healthy] and [Client.Ready] cover the rest.
// Results use the types of github.com/prometheus/common/model. Warnings and
// infos of an answer are always returned.
//
// Every non-2xx answer is an [*APIError] (get it with errors.As) carrying the
// HTTP status, Prometheus' errorType and message, and the body when it was
// not JSON (an HTML page from a proxy, say). Cancellation and deadlines are
// visible with errors.Is(err, context.Canceled) and
// errors.Is(err, context.DeadlineExceeded).
//
// Queries are sent as POST forms, falling back to GET when the server
// refuses POST. [Options] adds retries with capped exponential backoff that
// honour Retry-After, a response size cap, and auth and TLS through
// prometheus/common/config.HTTPClientConfig. The zero Options works.
//
// Instant and range answers are decoded while they stream in; the whole
// body is never held in memory (docs/design.md says how, BENCHMARKS.md how
// fast).
//
// To put a user-supplied value into a query, never concatenate strings: use
// [Select] with [Eq], [Neq], [Re] and [Nre] matchers, and [LiteralRegex] to
// match a value exactly inside a regular expression. Values are quoted with
// Go string-literal rules, so no value can change the shape of the query.
//
// # Engines
//
// The client speaks the Prometheus HTTP API, and is tested against
// Prometheus 2 and 3 and VictoriaMetrics (docs/design.md has the table of
// differences). On VictoriaMetrics, whose MetricsQL has no scalar or
// string type, scalar expressions come back as a one-sample vector: use
// [Client.Vector] ([Client.Scalar] returns [ErrUnexpectedResultType]);
// errors carry its status code as their Type (a query that does not parse
// is 422, "422"; [APIError.BadQuery] is true for it as for Prometheus'
// bad_data); its cluster's partial answers set [Meta].Partial; rules and
// alerts are vmalert's, so VictoriaMetrics itself answers empty lists.
// Names outside the legacy character set (UTF-8 metric and label names,
// stored by Prometheus 3) are quoted by [Select].
//
// [Client.WaitTargetUp] and [Client.WaitForValue] help tests and pipelines
// wait until Prometheus has scraped a target or a query has data.
package promquery
