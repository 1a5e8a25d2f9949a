package main

import (
	"errors"
	"flag"
	"fmt"
	"strconv"

	"github.com/promflow/promflow/mockexporter"
)

// budgetFlag is one mockexporter budget as a flag with an environment
// fallback.
type budgetFlag struct {
	name, env, usage string
	def              int64
	negativeOK       bool // negative means no limit
	set              func(*mockexporter.Options, int64)
}

var budgetFlags = []budgetFlag{
	{"max-bytes", "MOCK_MAX_BYTES", "budget of the estimated bytes of series, labels, sources and scenarios held; a change beyond it is refused (413); negative: no limit",
		mockexporter.DefaultMaxBytes, true, func(o *mockexporter.Options, v int64) { o.MaxBytes = v }},
	{"max-exposition-bytes", "MOCK_MAX_EXPOSITION_BYTES", "budget of the /metrics exposition size (an upper bound per series: a histogram series costs buckets+3 lines); a change beyond it is refused (413); negative: no limit",
		mockexporter.DefaultMaxExpositionBytes, true, func(o *mockexporter.Options, v int64) { o.MaxExpositionBytes = v }},
	{"max-series", "MOCK_MAX_SERIES", "most series held; beyond it 413",
		mockexporter.DefaultMaxSeries, false, func(o *mockexporter.Options, v int64) { o.MaxSeries = int(v) }},
	{"max-buckets", "MOCK_MAX_BUCKETS", "most buckets of a histogram family; beyond it 400",
		mockexporter.DefaultMaxBuckets, false, func(o *mockexporter.Options, v int64) { o.MaxBuckets = int(v) }},
	{"max-labels", "MOCK_MAX_LABELS", "most label names of a family (labels of a series); beyond it 400",
		mockexporter.DefaultMaxLabels, false, func(o *mockexporter.Options, v int64) { o.MaxLabels = int(v) }},
	{"max-label-value-bytes", "MOCK_MAX_LABEL_VALUE_BYTES", "longest label value in bytes; beyond it 400",
		mockexporter.MaxLabelValueLen, false, func(o *mockexporter.Options, v int64) { o.MaxLabelValueBytes = int(v) }},
}

// addBudgetFlags defines the budget flags on fs, their defaults taken from
// the environment when set. The returned function, called after fs.Parse,
// copies them into opts; it reports a malformed environment value or flag.
func addBudgetFlags(fs *flag.FlagSet, getenv func(string) string) func(*mockexporter.Options) error {
	vals := make([]*int64, len(budgetFlags))
	var envErr error
	for i, b := range budgetFlags {
		def := b.def
		if s := getenv(b.env); s != "" {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				envErr = errors.Join(envErr, fmt.Errorf("%s=%q: want a decimal integer", b.env, s))
			} else {
				def = n
			}
		}
		vals[i] = fs.Int64(b.name, def, b.usage+" (env "+b.env+")")
	}
	return func(opts *mockexporter.Options) error {
		if envErr != nil {
			return envErr
		}
		for i, b := range budgetFlags {
			v := *vals[i]
			switch {
			case v < 0 && b.negativeOK:
			case v <= 0 || v > 1<<40:
				want := "1 to 2^40"
				if b.negativeOK {
					want += ", or negative for no limit"
				}
				return fmt.Errorf("-%s %d: want %s", b.name, v, want)
			}
			b.set(opts, v)
		}
		return nil
	}
}
