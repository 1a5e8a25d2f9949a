package mockexporter_test

import (
	"bytes"
	"fmt"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/promflow/promflow/mockexporter"
)

const benchSeries = 10_000

func benchLabels(i int) (instance, shard string) {
	return fmt.Sprintf("host-%03d:9100", i%100), fmt.Sprintf("shard-%d", i)
}

// scrape is one scrape as a Prometheus server costs it to the exporter:
// gather through a prometheus.Registry, encode as text.
func scrape(b *testing.B, g prometheus.Gatherer) {
	mfs, err := g.Gather()
	if err != nil {
		b.Fatal(err)
	}
	enc := expfmt.NewEncoder(io.Discard, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScrape compares one scrape (gather + text encoding) of 10,000
// simulated gauges with the same 10,000 gauges in a plain client_golang
// GaugeVec, both gathered through a prometheus.Registry. The promflow side
// computes every value from its source at each Collect (nothing is cached
// between scrapes); before timing, the two expositions are checked to be
// byte for byte the same, so both sides do the same work.
//
//	go test -run '^$' -bench 'BenchmarkScrape$' -benchmem -count 6 ./mockexporter/
func BenchmarkScrape(b *testing.B) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	reg := mockexporter.New(mockexporter.Options{Empty: true, Now: func() time.Time { return t0 }})
	if err := reg.Declare(mockexporter.MetricOptions{Name: "bench_value", Help: "Benchmark gauge.", LabelNames: []string{"instance", "shard"}}); err != nil {
		b.Fatal(err)
	}
	vec := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "bench_value", Help: "Benchmark gauge."}, []string{"instance", "shard"})
	for i := range benchSeries {
		inst, shard := benchLabels(i)
		if err := reg.SetValue("bench_value", mockexporter.Labels{"instance": inst, "shard": shard}, float64(i)); err != nil {
			b.Fatal(err)
		}
		vec.WithLabelValues(inst, shard).Set(float64(i))
	}
	promflow, plain := prometheus.NewRegistry(), prometheus.NewRegistry()
	promflow.MustRegister(reg)
	plain.MustRegister(vec)
	if a, c := exposition(b, promflow), exposition(b, plain); !bytes.Equal(a, c) {
		b.Fatalf("the two registries expose different series (%d vs %d bytes)", len(a), len(c))
	}

	for _, side := range []struct {
		name string
		g    prometheus.Gatherer
	}{{"promflow", promflow}, {"client_golang", plain}} {
		b.Run(side.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				scrape(b, side.g)
			}
		})
	}
}

// exposition is what scrape encodes, kept.
func exposition(b *testing.B, g prometheus.Gatherer) []byte {
	mfs, err := g.Gather()
	if err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			b.Fatal(err)
		}
	}
	return buf.Bytes()
}

// BenchmarkScrapeSources shows what dynamic sources add to the scrape of
// BenchmarkScrape/promflow: the same 10,000 series driven by a sine, a
// seeded random walk, or as counters integrating a rate (the clock advances
// 1 s per scrape, as with a 1 s scrape interval).
func BenchmarkScrapeSources(b *testing.B) {
	cases := []struct {
		name string
		typ  mockexporter.Type
		src  mockexporter.Source
	}{
		{"sine", mockexporter.Gauge, mockexporter.Sine{Base: 50, Amplitude: 40, Period: time.Minute}},
		{"randomwalk", mockexporter.Gauge, mockexporter.RandomWalk{Seed: 1, Base: 50, Step: 1, Min: 0, Max: 100}},
		{"counter_rate", mockexporter.Counter, mockexporter.Constant(3)},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			reg := mockexporter.New(mockexporter.Options{Empty: true, Now: func() time.Time { return now }})
			if err := reg.Declare(mockexporter.MetricOptions{Name: "bench_value", Help: "Benchmark series.", Type: tc.typ, LabelNames: []string{"instance", "shard"}}); err != nil {
				b.Fatal(err)
			}
			for i := range benchSeries {
				inst, shard := benchLabels(i)
				if err := reg.Set("bench_value", mockexporter.Labels{"instance": inst, "shard": shard}, tc.src); err != nil {
					b.Fatal(err)
				}
			}
			g := prometheus.NewRegistry()
			g.MustRegister(reg)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				now = now.Add(time.Second)
				scrape(b, g)
			}
		})
	}
}

// heapInUse is the live heap after a full collection.
func heapInUse() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkScrapeMillion compares one scrape (gather + text encoding) of
// a generated family of 1,000,000 gauges (instance × shard, 100 × 10,000,
// each driven by its own seeded noise source, churning 10 % of the series
// a minute) with a client_golang GaugeVec holding the same label sets,
// whose values were set before the scrape to the generated ones. Before
// timing, the two expositions are checked to be byte for byte the same.
// The clock advances 15 s per scrape (a usual scrape interval), so every
// fourth scrape replaces 100,000 series. It reports the live heap per
// series of each side (runtime.MemStats after GC, delta / N) as
// heap_B/series. promflow_gatherer is the same scrape through the
// registry's own Gather, the path Registry.Handler serves.
//
//	go test -run '^$' -bench 'BenchmarkScrapeMillion' -benchmem -benchtime 8x -timeout 30m ./mockexporter/
func BenchmarkScrapeMillion(b *testing.B) {
	const n = 1_000_000
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	base := heapInUse()
	reg := mockexporter.New(mockexporter.Options{
		Empty: true, Now: func() time.Time { return now }, MaxSeries: n,
		MaxBytes: -1, MaxExpositionBytes: -1, DisableRuntimeCollectors: true,
	})
	err := reg.DeclareFamily(mockexporter.FamilyTemplate{
		Name: "bench_value", Help: "Benchmark gauge.", Labels: []string{"instance=host-{0..99}:9100", "shard=shard-{0..9999}"},
		Seed: 1, Churn: &mockexporter.Churn{Share: 0.1, Interval: mockexporter.Duration(time.Minute), Label: "shard"},
		Source: &mockexporter.SourceSpec{Kind: "noise", Base: 50, Amplitude: 10, Interval: mockexporter.Duration(time.Second)},
	})
	if err != nil {
		b.Fatal(err)
	}
	promflowHeap := heapInUse() - base

	series, err := reg.Series("bench_value")
	if err != nil {
		b.Fatal(err)
	}
	base = heapInUse()
	vec := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "bench_value", Help: "Benchmark gauge."}, []string{"instance", "shard"})
	for _, si := range series {
		vec.WithLabelValues(si.Labels["instance"], si.Labels["shard"]).Set(si.Value)
	}
	plainHeap := heapInUse() - base
	runtime.KeepAlive(series) // counted in base, not in the vec's share
	series = nil
	promflow, plain := prometheus.NewRegistry(), prometheus.NewRegistry()
	promflow.MustRegister(reg)
	plain.MustRegister(vec)
	if a, c := exposition(b, promflow), exposition(b, plain); !bytes.Equal(a, c) {
		b.Fatalf("the two registries expose different series (%d vs %d bytes)", len(a), len(c))
	}
	b.Logf("live heap per series: promflow %.0f B, client_golang %.0f B", float64(promflowHeap)/n, float64(plainHeap)/n)

	for _, side := range []struct {
		name string
		g    prometheus.Gatherer
		heap uint64
	}{
		{"promflow", promflow, promflowHeap},
		// The path Registry.Handler serves: the registry's own Gather.
		{"promflow_gatherer", prometheus.Gatherers{reg}, promflowHeap},
		{"client_golang", plain, plainHeap},
	} {
		b.Run(side.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				now = now.Add(15 * time.Second)
				scrape(b, side.g)
			}
			b.ReportMetric(float64(side.heap)/n, "heap_B/series")
		})
	}
}
