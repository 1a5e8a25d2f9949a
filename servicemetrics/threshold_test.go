package servicemetrics_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/promflow/promflow/servicemetrics"
)

func TestParseThreshold(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want servicemetrics.Threshold // Expr is filled in from expr
		ok   bool
	}{
		{"mock_disk_usage_percent > 90", servicemetrics.Threshold{Metric: "mock_disk_usage_percent", Op: ">", Value: 90}, true},
		{"  up==0 ", servicemetrics.Threshold{Metric: "up", Op: "==", Value: 0}, true},
		{"node:cpu:ratio >= 0.95", servicemetrics.Threshold{Metric: "node:cpu:ratio", Op: ">=", Value: 0.95}, true},
		{"free_bytes < 1e9", servicemetrics.Threshold{Metric: "free_bytes", Op: "<", Value: 1e9}, true},
		{"x != -1.5", servicemetrics.Threshold{Metric: "x", Op: "!=", Value: -1.5}, true},
		{"90 < mock_cpu", servicemetrics.Threshold{Metric: "mock_cpu", Op: ">", Value: 90}, true},
		{`disk{device="sda", mountpoint='/data'} > 80`, servicemetrics.Threshold{Metric: "disk", Matchers: map[string]string{"device": "sda", "mountpoint": "/data"}, Op: ">", Value: 80}, true},
		{`disk{device=~"sd.*",job="n"} > 80`, servicemetrics.Threshold{Metric: "disk", Matchers: map[string]string{"job": "n"}, Partial: true, Op: ">", Value: 80}, true},
		{`disk{device="a\"b"} <= 16`, servicemetrics.Threshold{Metric: "disk", Matchers: map[string]string{"device": `a"b`}, Op: "<=", Value: 16}, true},
		// Not simple comparisons: no threshold.
		{"rate(x[5m]) > 1", servicemetrics.Threshold{}, false},
		{"x > bool 1", servicemetrics.Threshold{}, false},
		{"x > 1 and y > 2", servicemetrics.Threshold{}, false},
		{"x > y", servicemetrics.Threshold{}, false},
		{"x + 1 > 2", servicemetrics.Threshold{}, false},
		{"sum(x) > 2", servicemetrics.Threshold{}, false},
		{"x offset 5m > 2", servicemetrics.Threshold{}, false},
		{"x > Inf", servicemetrics.Threshold{}, false},
		{"x > 1e999", servicemetrics.Threshold{}, false},
		{"x", servicemetrics.Threshold{}, false},
		{`x{a="b" > 1`, servicemetrics.Threshold{}, false},
		{"", servicemetrics.Threshold{}, false},
	} {
		got, ok := servicemetrics.ParseThreshold(tc.expr)
		assert.Equal(t, tc.ok, ok, tc.expr)
		if tc.ok {
			tc.want.Expr = tc.expr
			assert.Equal(t, tc.want, got, tc.expr)
		}
	}
}

func FuzzParseThreshold(f *testing.F) {
	for _, s := range []string{"x > 1", `m{a="b"} == 2`, "3 < y", "rate(x[1m]) > 0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		th, ok := servicemetrics.ParseThreshold(expr) // never panics
		if ok && (th.Metric == "" || th.Op == "") {
			t.Fatalf("%q: threshold without metric or operator: %+v", expr, th)
		}
	})
}
