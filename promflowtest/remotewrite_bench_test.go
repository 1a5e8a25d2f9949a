package promflowtest_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/promflow/promflow/mockexporter"
	"github.com/promflow/promflow/promflowtest"
)

// BenchmarkRemoteWrite measures remote-write throughput to a local
// VictoriaMetrics, side by side in one run:
//
//   - impl=prometheus, the anchor: a real Prometheus scrapes a
//     mockexporter holding N gauge series every second and remote-writes
//     them; it can deliver at most what its scrapes offer
//     (offered-samples/s, N plus the scrape's own series per second);
//   - impl=mockexporter: the exporter pushes the same N series itself
//     (Registry.Push, Remote Write 1.0 through client_golang's
//     exp/api/remote), one push after the other, as fast as the receiver
//     takes them.
//
// One op is one sample that VictoriaMetrics ingested through remote write
// (its vm_rows_inserted_total{type="promremotewrite"}); samples/s is that
// count over the timed wall-clock span.
//
//	go test -run '^$' -bench BenchmarkRemoteWrite -benchtime 200000x ./promflowtest/
func BenchmarkRemoteWrite(b *testing.B) {
	for _, n := range []int{10_000, 50_000, 100_000} {
		b.Run(fmt.Sprintf("impl=prometheus/series=%d", n), func(b *testing.B) { benchRemoteWrite(b, n) })
		b.Run(fmt.Sprintf("impl=mockexporter/series=%d", n), func(b *testing.B) { benchMockRemoteWrite(b, n) })
	}
}

// benchSeries returns a mockexporter serving n gauge series.
func benchSeries(b *testing.B, n int) *promflowtest.MockExporterServer {
	b.Helper()
	me := promflowtest.MockExporter(b, mockexporter.Options{Empty: true, DisableRuntimeCollectors: true, MaxSeries: n + 10})
	if err := me.Declare(mockexporter.MetricOptions{Name: "bench_rw_gauge", Help: "Remote-write benchmark series.", Type: mockexporter.Gauge, LabelNames: []string{"pod"}}); err != nil {
		b.Fatal(err)
	}
	for i := range n {
		if err := me.SetValue("bench_rw_gauge", mockexporter.Labels{"pod": "pod-" + strconv.Itoa(i)}, float64(i)); err != nil {
			b.Fatal(err)
		}
	}
	return me
}

// benchMockRemoteWrite pushes the series from the exporter until
// VictoriaMetrics has ingested b.N samples.
func benchMockRemoteWrite(b *testing.B, series int) {
	b.StopTimer()
	me := benchSeries(b, series)
	vm := promflowtest.VictoriaMetrics(b, promflowtest.VictoriaMetricsOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	opts := mockexporter.RemoteWriteOptions{URL: vm.WriteURL, Labels: mockexporter.Labels{"job": "bench"}}
	if _, err := me.Push(ctx, opts); err != nil { // warm up
		b.Fatal(err)
	}
	base := waitRows(b, ctx, vm.URL, func(rows int64) bool { return rows >= int64(series) })

	b.ResetTimer()
	b.StartTimer()
	start := time.Now()
	pushed := int64(0)
	for pushed < int64(b.N) {
		st, err := me.Push(ctx, opts)
		if err != nil {
			b.Fatal(err)
		}
		pushed += int64(st.Series)
	}
	rows := waitRows(b, ctx, vm.URL, func(rows int64) bool { return rows-base >= pushed })
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(rows-base)/elapsed.Seconds(), "samples/s")
}

func benchRemoteWrite(b *testing.B, series int) {
	b.StopTimer()
	me := benchSeries(b, series)
	vm := promflowtest.VictoriaMetrics(b, promflowtest.VictoriaMetricsOptions{})
	promflowtest.Prometheus(b, promflowtest.PrometheusOptions{
		ScrapeInterval: time.Second,
		ScrapeConfigs:  []promflowtest.ScrapeConfig{{JobName: "bench", Targets: []string{me.Target}}},
		RemoteWrite:    []string{vm.WriteURL},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// Warm up: the first full scrape has arrived.
	base := waitRows(b, ctx, vm.URL, func(rows int64) bool { return rows >= int64(series) })

	b.ResetTimer()
	b.StartTimer()
	start := time.Now()
	rows := waitRows(b, ctx, vm.URL, func(rows int64) bool { return rows-base >= int64(b.N) })
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(rows-base)/elapsed.Seconds(), "samples/s")
	b.ReportMetric(float64(series+5), "offered-samples/s") // + up and the scrape_* series
}

// waitRows polls VictoriaMetrics' own metrics every 50 ms until the count
// of rows it ingested through remote write satisfies done, and returns it.
func waitRows(b *testing.B, ctx context.Context, vmURL string, done func(int64) bool) int64 {
	b.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		rows, err := remoteWriteRows(ctx, vmURL)
		if err != nil {
			b.Fatal(err)
		}
		if done(rows) {
			return rows
		}
		select {
		case <-ctx.Done():
			b.Fatalf("victoria-metrics ingested %d remote-write rows: %v", rows, ctx.Err())
		case <-tick.C:
		}
	}
}

// remoteWriteRows reads vm_rows_inserted_total{type="promremotewrite"}
// from VictoriaMetrics' /metrics (0 before the first write).
func remoteWriteRows(ctx context.Context, vmURL string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, vmURL+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	const prefix = `vm_rows_inserted_total{type="promremotewrite"} `
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(line), 64)
			return int64(v), err
		}
	}
	return 0, sc.Err()
}
