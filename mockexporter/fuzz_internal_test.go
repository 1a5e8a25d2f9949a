package mockexporter

import (
	"errors"
	"math"
	"testing"
)

// FuzzSimulatePath checks that the seed path parser never panics and that
// whatever it accepts is a known route with valid labels and a finite value.
func FuzzSimulatePath(f *testing.F) {
	for _, r := range seedRoutes {
		f.Add(r.Pattern())
	}
	for _, s := range []string{
		"/simulate/cpu-usage/78", "/simulate/disk-usage/sda/85", "/simulate/disk-read-error/sda",
		"/simulate/cpu-usage/abc", "/simulate/cpu-usage/NaN", "/simulate/cpu-usage/-Inf",
		"/simulate/disk-usage//85", "/simulate/disk-usage/%ff/85", "/simulate/disk-usage/%zz/85",
		"/simulate/", "/simulate", "/simulate/cpu-usage/1/2", "/simulate/prometheus-high-cpu/a%2Fb/5",
		"/simulate/cpu-usage/0x1p3", "/simulate/cpu-usage/1e309",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		call, err := parseSimulatePath(path)
		if err != nil {
			var ve *ValidationError
			if !errors.Is(err, errRouteNotFound) && !errors.As(err, &ve) {
				t.Fatalf("unexpected error type %T: %v", err, err)
			}
			return
		}
		if call.route == nil {
			t.Fatal("accepted without a route")
		}
		if math.IsNaN(call.value) || math.IsInf(call.value, 0) {
			t.Fatalf("accepted non-finite value %v", call.value)
		}
		if got, want := len(call.labels), len(call.route.Args)+len(call.route.Fixed); got != want {
			t.Fatalf("labels %v: got %d, want %d", call.labels, got, want)
		}
		for k, v := range call.labels {
			if err := checkLabelText(k, v); err != nil {
				t.Fatalf("accepted bad label: %v", err)
			}
		}
	})
}
