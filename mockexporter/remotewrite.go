package mockexporter

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/exp/api/remote"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/encoding/protowire"
)

// ErrRemoteWriteRejected: the remote-write receiver refused the request
// with a 4xx status other than 429; retrying would not help. The error is a
// *RemoteWriteError.
var ErrRemoteWriteRejected = errors.New("mockexporter: remote write rejected")

// RemoteWriteError reports a push that failed: rejected (4xx, matching
// ErrRemoteWriteRejected) or still failing (5xx, 429, network) after the
// retries.
type RemoteWriteError struct {
	// Status is the last HTTP status, 0 when the receiver was not reached.
	Status int
	// Attempts is the number of requests sent.
	Attempts int
	Err      error
}

func (e *RemoteWriteError) Error() string {
	return fmt.Sprintf("mockexporter: remote write failed after %d attempt(s) (last status %d): %v", e.Attempts, e.Status, e.Err)
}

// Unwrap returns the client's error.
func (e *RemoteWriteError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrRemoteWriteRejected) true for a 4xx other
// than 429.
func (e *RemoteWriteError) Is(target error) bool {
	return target == ErrRemoteWriteRejected && e.Status/100 == 4 && e.Status != http.StatusTooManyRequests
}

// RemoteWriteOptions configures [Registry.Push] and [Registry.RemoteWrite].
// Only URL is required.
type RemoteWriteOptions struct {
	// URL is the receiver's endpoint, e.g. Prometheus started with
	// --web.enable-remote-write-receiver: http://host:9090/api/v1/write;
	// VictoriaMetrics: http://host:8428/api/v1/write.
	URL string
	// Interval between pushes of RemoteWrite; default 15s.
	Interval time.Duration
	// Labels are added to every series that lacks them (e.g. job).
	Labels Labels
	// MinBackoff and MaxBackoff bound the wait between retries (doubling,
	// plus the receiver's Retry-After); default 100ms and 5s. MaxRetries
	// is the retries of one push after its first attempt; default (0 or
	// less) 5.
	MinBackoff, MaxBackoff time.Duration
	MaxRetries             int
	// Client sends the requests; default a client with a 30s timeout.
	Client *http.Client
}

// PushStats describes one push.
type PushStats struct {
	Series   int       // time series sent (a histogram is several)
	At       time.Time // the samples' timestamp, the registry's now
	Attempts int       // requests sent, retries included
}

// Push sends every visible series' current value, at the registry's now,
// once, in Remote Write 1.0 (prometheus.WriteRequest, snappy) with
// client_golang's exp/api/remote client: retried with exponential backoff
// on 5xx, 429 and network errors, not on other 4xx. Histograms, summaries
// and gauge histograms are sent as their classic series (_bucket with le,
// quantile, _sum, _count or _gcount/_gsum); native buckets are not sent.
// The error is a *RemoteWriteError (errors.Is ErrRemoteWriteRejected for a
// 4xx).
func (r *Registry) Push(ctx context.Context, opts RemoteWriteOptions) (PushStats, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return PushStats{}, err
	}
	mfs, at := r.gatherAt()
	req := &writeRequest{series: flatten(mfs, at, opts.Labels)}
	st := PushStats{Series: len(req.series), At: at}
	rec := &statusRecorder{next: opts.Client.Transport}
	client := *opts.Client
	client.Transport = rec
	api, err := remote.NewAPI(opts.URL, remote.WithAPIHTTPClient(&client), remote.WithAPIPath(""),
		remote.WithAPIBackoff(remote.BackoffConfig{Min: opts.MinBackoff, Max: opts.MaxBackoff, MaxRetries: opts.MaxRetries}))
	if err != nil {
		return st, fmt.Errorf("mockexporter: remote write: %w", err)
	}
	_, err = api.Write(ctx, remote.WriteV1MessageType, req)
	st.Attempts, _ = rec.get()
	if err != nil {
		_, status := rec.get()
		return st, &RemoteWriteError{Status: status, Attempts: st.Attempts, Err: err}
	}
	return st, nil
}

// RemoteWrite pushes (see [Registry.Push]) every Interval until ctx is
// done, then returns nil. A failed push is logged and the next one comes at
// the next interval; with stop set, RemoteWrite returns the first rejected
// push's error (4xx) instead. It runs in the caller's goroutine.
func (r *Registry) RemoteWrite(ctx context.Context, opts RemoteWriteOptions, stopOnReject bool) error {
	opts, err := opts.withDefaults()
	if err != nil {
		return err
	}
	t := time.NewTicker(opts.Interval)
	defer t.Stop()
	for {
		st, err := r.Push(ctx, opts)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil && stopOnReject && errors.Is(err, ErrRemoteWriteRejected):
			return err
		case err != nil:
			r.log.Error("mockexporter: remote write failed", "url", opts.URL, "err", err)
		default:
			r.log.Debug("mockexporter: remote write", "url", opts.URL, "series", st.Series, "attempts", st.Attempts)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Validate checks the URL and labels.
func (o RemoteWriteOptions) Validate() error {
	_, err := o.withDefaults()
	return err
}

func (o RemoteWriteOptions) withDefaults() (RemoteWriteOptions, error) {
	if !strings.HasPrefix(o.URL, "http://") && !strings.HasPrefix(o.URL, "https://") {
		return o, validationf("url", "remote write needs an http(s) URL, got %q", truncate(o.URL))
	}
	for k, v := range o.Labels {
		if !validLabelName(k) {
			return o, validationf("labels", "%q is not a valid label name", truncate(k))
		}
		if err := checkLabelText(k, v); err != nil {
			return o, err
		}
	}
	if o.Interval <= 0 {
		o.Interval = 15 * time.Second
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 100 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Second
	}
	if o.MaxRetries <= 0 {
		o.MaxRetries = 5 // the client's 0 would retry forever
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 30 * time.Second}
	}
	return o, nil
}

// gatherAt gathers at one reading of the clock and returns it.
func (r *Registry) gatherAt() ([]*dto.MetricFamily, time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	at := r.now()
	return r.gatherLocked(at), at
}

// statusRecorder counts the requests and keeps the last status.
type statusRecorder struct {
	next     http.RoundTripper
	mu       sync.Mutex
	attempts int
	status   int
}

func (s *statusRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	next := s.next
	if next == nil {
		next = http.DefaultTransport
	}
	resp, err := next.RoundTrip(req)
	s.mu.Lock()
	s.attempts++
	if err == nil {
		s.status = resp.StatusCode
	}
	s.mu.Unlock()
	return resp, err
}

func (s *statusRecorder) get() (attempts, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts, s.status
}

// timeSeries is one series of a write request.
type timeSeries struct {
	labels []string // name, value, ... sorted by name, __name__ first
	value  float64
	ts     int64 // milliseconds
}

// flatten turns families into the series a scrape would store.
func flatten(mfs []*dto.MetricFamily, at time.Time, extra Labels) []timeSeries {
	ms := at.UnixMilli()
	var out []timeSeries
	for _, mf := range mfs {
		name := mf.GetName()
		for _, m := range mf.GetMetric() {
			add := func(suffix string, v float64, ln, lv string) {
				out = append(out, timeSeries{labels: seriesLabels(name+suffix, m.GetLabel(), extra, ln, lv), value: v, ts: ms})
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				add("", m.GetCounter().GetValue(), "", "")
			case dto.MetricType_SUMMARY:
				s := m.GetSummary()
				for _, q := range s.GetQuantile() {
					add("", q.GetValue(), "quantile", formatValue(q.GetQuantile()))
				}
				add("_sum", s.GetSampleSum(), "", "")
				add("_count", float64(s.GetSampleCount()), "", "")
			case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
				h := m.GetHistogram()
				for _, b := range h.GetBucket() {
					if !math.IsInf(b.GetUpperBound(), 1) {
						add("_bucket", float64(b.GetCumulativeCount()), "le", formatValue(b.GetUpperBound()))
					}
				}
				add("_bucket", float64(h.GetSampleCount()), "le", "+Inf")
				sum, count := "_sum", "_count"
				if mf.GetType() == dto.MetricType_GAUGE_HISTOGRAM {
					sum, count = "_gsum", "_gcount"
				}
				add(sum, h.GetSampleSum(), "", "")
				add(count, float64(h.GetSampleCount()), "", "")
			default:
				add("", m.GetGauge().GetValue(), "", "")
			}
		}
	}
	return out
}

func seriesLabels(name string, pairs []*dto.LabelPair, extra Labels, ln, lv string) []string {
	all := map[string]string{}
	for k, v := range extra {
		all[k] = v
	}
	for _, p := range pairs {
		all[p.GetName()] = p.GetValue()
	}
	if ln != "" {
		all[ln] = lv
	}
	keys := make([]string, 0, len(all))
	for k := range all {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]string, 0, 2*len(keys)+2)
	out = append(out, "__name__", name)
	for _, k := range keys {
		out = append(out, k, all[k])
	}
	return out
}

// writeRequest is a Remote Write 1.0 prometheus.WriteRequest (message
// numbers of prompb's remote.proto and types.proto), encoded with protowire.
// It implements the Size/MarshalToSizedBuffer pair client_golang's
// exp/api/remote client sends.
type writeRequest struct {
	series  []timeSeries
	encoded []byte
}

// Size is the length of the encoded request.
func (w *writeRequest) Size() int {
	if w.encoded == nil {
		w.encoded = w.marshal()
	}
	return len(w.encoded)
}

// MarshalToSizedBuffer writes the request at the end of b, as gogo
// protobuf does, and returns its length.
func (w *writeRequest) MarshalToSizedBuffer(b []byte) (int, error) {
	n := w.Size()
	if len(b) < n {
		return 0, errors.New("mockexporter: write request buffer too small")
	}
	copy(b[len(b)-n:], w.encoded)
	return n, nil
}

func (w *writeRequest) marshal() []byte {
	var out, ts, lbl, smp []byte
	for _, s := range w.series {
		ts = ts[:0]
		for i := 0; i+1 < len(s.labels); i += 2 {
			lbl = protowire.AppendTag(lbl[:0], 1, protowire.BytesType)
			lbl = protowire.AppendString(lbl, s.labels[i])
			lbl = protowire.AppendTag(lbl, 2, protowire.BytesType)
			lbl = protowire.AppendString(lbl, s.labels[i+1])
			ts = protowire.AppendTag(ts, 1, protowire.BytesType) // TimeSeries.labels
			ts = protowire.AppendBytes(ts, lbl)
		}
		smp = protowire.AppendTag(smp[:0], 1, protowire.Fixed64Type) // Sample.value
		smp = protowire.AppendFixed64(smp, math.Float64bits(s.value))
		smp = protowire.AppendTag(smp, 2, protowire.VarintType) // Sample.timestamp
		smp = protowire.AppendVarint(smp, uint64(s.ts))
		ts = protowire.AppendTag(ts, 2, protowire.BytesType) // TimeSeries.samples
		ts = protowire.AppendBytes(ts, smp)
		out = protowire.AppendTag(out, 1, protowire.BytesType) // WriteRequest.timeseries
		out = protowire.AppendBytes(out, ts)
	}
	return out
}

// String describes the request (for logs).
func (w *writeRequest) String() string { return strconv.Itoa(len(w.series)) + " series" }
