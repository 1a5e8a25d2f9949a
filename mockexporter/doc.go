// Package mockexporter simulates a Prometheus exporter: a [Registry] of
// gauges, counters, histograms (classic, native or both), summaries and
// gauge histograms whose values are computed at collect time
// from [Source]s (constant, steps, ramp, sine, square, spike, noise, random
// walk, sums of these) and timed [Scenario]s, read from an injectable clock so
// that tests are deterministic. It is the library behind the mock-metrics
// service of the promflow pipeline (examples/mockmetrics).
//
// # Getting started
//
// Call [New]; the zero [Options] use the real clock and pre-declare the seed
// [Catalogue] (the 26 mock_* families of the original service, each with a
// default series, so every family is exposed from the first scrape). Then
// either register the Registry in a prometheus.Registerer (it is a
// prometheus.Collector) or serve [Registry.Handler]:
//
//	reg := mockexporter.New(mockexporter.Options{})
//	http.Handle("/", reg.Handler())
//
// Drive values from Go with [Registry.SetValue], [Registry.Set] (a Source),
// [Registry.Add], [Registry.Observe], [Registry.StartScenario] and
// [Registry.SetFaults], or over HTTP.
//
// # Cardinality and churn
//
// [Registry.DeclareFamily] declares a family of generated series from label
// templates ([FamilyTemplate]: "pod=pod-{0..999}", several labels combined
// as a cartesian product, or zipped), each series with its own seeded
// source, and optional [Churn]: every interval a share of the series is
// replaced by series with new label values. Label sets and values are a
// function of the template, its seed and the clock, so two exporters with
// the same template agree. The whole family is checked against the budgets
// before it is created, and churn keeps its count and cost constant.
//
// # Concurrency
//
// Every method of Registry, and its handler, is safe for concurrent use.
// The registry starts no goroutine and needs no Close.
//
// # Values
//
// A gauge's value is its source's value at the collect time, clamped into
// the family's [Range] (and rounded for Status and Count ranges). A
// counter's value is the integral of its source, read as a rate per second
// (negative rates count as 0), plus explicit increments: it never decreases
// except through [Registry.ResetSeries] or [Registry.Reset]. A histogram
// simulates ObservationsPerSecond observations per second whose values come
// from its source, plus explicit observations. Counter and histogram totals
// advance when they are read (a scrape, Series, Value); a clock that goes
// back changes nothing.
//
// A summary simulates observations as a histogram does; its count and sum
// are cumulative, its quantiles those of a sliding window (MaxAge, 10m)
// of observations: the source read at 100 evenly spaced instants of the
// window, each standing for its share of the simulated observations
// (ObservationsPerSecond × window / 100), and the window's explicit
// observations (the latest 128), each counting 1; a quantile q is the
// smallest value whose cumulative weight reaches q of the total. A gauge histogram is the distribution of such a window,
// exposed as gaugehistogram in OpenMetrics and the protobuf format (by
// [Registry.Gather]; through Collect, client_golang's registry types it a
// histogram). A histogram with [MetricOptions].NativeBucketFactor has
// native (sparse) buckets too, exposed in the protobuf format that
// Prometheus asks for with --enable-feature=native-histograms, with the
// fields client_golang's NewConstNativeHistogram fills.
//
// # Remote write
//
// [Registry.Push] sends every visible series once, and
// [Registry.RemoteWrite] every interval until its context ends, to a
// Remote Write 1.0 receiver (Prometheus with
// --web.enable-remote-write-receiver, VictoriaMetrics' /api/v1/write) with
// client_golang's exp/api/remote client: exponential backoff on 5xx, 429
// and network errors, a *[RemoteWriteError] matching
// [ErrRemoteWriteRejected] on any other 4xx. The samples carry the
// registry's clock. Remote Write 2.0 is not sent: Debian's Prometheus 2.42
// and VictoriaMetrics 1.79 receive 1.0 only.
//
// # Rule tests
//
// [Registry.RuleTestInput] renders the series a [Scenario] drives as the
// input_series of a `promtool test rules` file ([InputSeries], values in
// promtool's expanding notation, see [ExpandingNotation]), read as a
// scrape would from a scratch registry under a clock starting at promtool's
// time 0: the scenario that drives the live pipeline unit-tests the alert
// rules too (promflowtest.RuleTest runs the file).
//
// # Exemplars
//
// With [MetricOptions].Exemplars a counter carries one exemplar, its
// latest increment (an Add, or what its rate added up to at the latest
// read), and each classic bucket of a histogram the latest observation
// that fell in it (simulated or explicit; the +Inf one as an explicit
// bucket, as client_golang writes it; with native buckets, the exemplar
// list too). Each has one label, trace_id: 32 hex digits hashed from
// ExemplarSeed, the series and the observation's instant, so two
// registries with the same seed and clock agree. OpenMetrics
// (Accept: application/openmetrics-text) and protobuf scrapes show them;
// the text format does not. Note that expfmt's OpenMetrics encoder types a
// counter whose name lacks _total as unknown: name counters *_total.
//
// Writes are validated: a value must be finite and inside the family's range
// (no negative bytes, percentages within 0–100, statuses 0 or 1, counts
// whole), a source's [Source.Bounds] must lie inside it, label values must be
// non-empty valid UTF-8 without control characters (NUL to U+001F, DEL;
// tab and newline are allowed, and escaped in the exposition, except in a
// seed route's path) of
// at most Options.MaxLabelValueBytes ([MaxLabelValueLen], 128) bytes. A
// rejected write returns a *[ValidationError] (or wraps [ErrUnknownMetric],
// [ErrWrongType], ...) and changes nothing.
//
// # Budgets
//
// A registry bounds what clients can make it hold, with [Options] whose zero
// values are sane defaults: MaxSeries (100,000 series), MaxBytes (64 MiB of
// families, series, labels, sources and scenarios, estimated as
// [SeriesOverheadBytes] documents), MaxExpositionBytes (16 MiB: an upper
// bound of the text exposition, so a scrape of /metrics stays within it),
// MaxBuckets (64 a histogram), MaxLabels (32 a family) and
// MaxLabelValueBytes (128). Every write that would create series (Set,
// SetValue, Add, Observe, Declare with a default series, StartScenario) is
// checked against them before anything changes: a budget exceeded is a
// *[LimitError] (ErrLimit), a shape limit (buckets, labels, label length) a
// *ValidationError, both naming the limit and its value.
// [Registry.Usage] reports what is held; deleting series and Reset lower it.
// The seed catalogue always fits, whatever the budgets.
//
// # HTTP API
//
// [Registry.Handler] serves:
//
//	GET  /health                         200 text/plain "Mock Metrics Service is UP!"
//	GET  /metrics                        Go and process collectors + every simulated series;
//	                                     text, OpenMetrics and gzip by content negotiation (promhttp)
//	POST /simulate/...                   the 26 seed routes (see [SeedRoutes]), e.g.
//	                                     /simulate/cpu-usage/78, /simulate/disk-usage/sda/85,
//	                                     /simulate/disk-read-error/sda (adds 1);
//	                                     200 text/plain on success, 400/404/405/413 text/plain on error;
//	                                     values are decimal numbers only (no 0x1p4, 1_000, Inf, NaN,
//	                                     spaces)
//
// /health and /metrics answer other methods than GET and HEAD with 405
// (text/plain, Allow header); any path not listed here gets 404 with a JSON
// error. The JSON control API answers {"status":"success","data":...};
// errors are {"status":"error","error":"..."} with 400 (invalid input: also
// invalid UTF-8, lone surrogates such as "\ud800", control characters in
// label values, data after the JSON value, more buckets, labels or label
// bytes than allowed), 404 (unknown metric, series, scenario or route), 405
// (wrong method, with an Allow header), 409 (duplicate metric) or 413 (body
// over Options.MaxBodyBytes, 1 MiB by default, or a budget or limit reached:
// series, bytes, exposition size, families, running scenarios):
//
//	GET    /api/v1/metrics               declared families ([MetricOptions])
//	POST   /api/v1/metrics               declare a family: {"name":"app_queue_depth","type":"gauge",
//	                                     "labels":["queue"],"range":"count","defaults":{"queue":"main"}} → 201;
//	                                     types gauge, counter, histogram (buckets, native_bucket_factor,
//	                                     exemplars), summary (quantiles, max_age), gaugehistogram
//	GET    /api/v1/families              generated families ([FamilyInfo])
//	POST   /api/v1/families              declare a generated family ([FamilyTemplate]):
//	                                     {"name":"app_up","labels":["pod=pod-{0..999}","zone=z{0..2}"],
//	                                     "seed":1,"churn":{"share":0.1,"interval":"1m"},
//	                                     "source":{"kind":"noise","base":50,"amplitude":5}} → 201
//	GET    /api/v1/series[?metric=NAME]  series with their current values and sources ([SeriesInfo])
//	POST   /api/v1/series                set a series ([SetRequest]): {"metric":"mock_high_cpu_usage_percent",
//	                                     "value":78} or "source":{"kind":"ramp","from":10,"to":95,"duration":"5m"}
//	                                     or "add":1 or "observe":[0.2,0.3]; labels left out take the defaults
//	DELETE /api/v1/series                delete a series: {"metric":"...","labels":{...}}
//	POST   /api/v1/series/reset          counter or histogram back to 0: {"metric":"...","labels":{...}}
//	GET    /api/v1/scenarios             started scenarios ([ScenarioInfo])
//	POST   /api/v1/scenarios             start a scenario, JSON or YAML body ([Scenario]) → 201 + Location
//	GET    /api/v1/scenarios/{id}        one scenario
//	DELETE /api/v1/scenarios/{id}        stop it; its series go back to their own sources
//	GET    /api/v1/faults                current [Faults]
//	PUT    /api/v1/faults                set faults: {"status":500}, {"delay":"3s"},
//	                                     {"hide":[{"metric":"mock_service_up"}]}
//	DELETE /api/v1/faults                clear faults
//	POST   /api/v1/reset                 back to the initial state ([Registry.Reset])
//	GET    /api/v1/usage                 what the registry holds against its budgets ([Usage])
//
// # Determinism
//
// Every value is a function of the clock reading: one-shot shapes (ramp,
// steps, spike) of the time since they were set or since their scenario
// phase began, periodic and seeded ones (sine, square, noise, random walk)
// of the wall-clock instant, so two exporters, or one restarted, agree.
// Counters start from zero in a new process, as real counters do; Prometheus
// sees an ordinary counter reset.
package mockexporter
