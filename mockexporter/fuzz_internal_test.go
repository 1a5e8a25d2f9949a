package mockexporter

import (
	"encoding/json"
	"errors"
	"math"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
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
		"/simulate/cpu-usage/0x1p4", "/simulate/memory-usage/1_000", "/simulate/memory-usage/+Inf",
		"/simulate/memory-usage/infinity", "/simulate/cpu-usage/%2078", "/simulate/cpu-usage/78%20",
		"/simulate/cpu-usage/.5", "/simulate/cpu-usage/5.", "/simulate/cpu-usage/1e", "/simulate/cpu-usage/+5",
		"/simulate/disk-usage/sd%00a/85", "/simulate/disk-usage/sd%7F/85", "/simulate/disk-usage/%ED%A0%80/85",
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
		if call.route.Value != "" {
			segs := strings.Split(path, "/")
			raw, err := url.PathUnescape(segs[len(segs)-1])
			if err != nil || !decimalRE.MatchString(raw) {
				t.Fatalf("accepted the value %q, not a decimal number", segs[len(segs)-1])
			}
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

var decimalRE = regexp.MustCompile(`^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$`)

// FuzzDecimal: isDecimal is the regular expression of a decimal number, and
// what parseDecimal accepts is finite.
func FuzzDecimal(f *testing.F) {
	for _, s := range []string{"85", "-0.5", ".5", "5.", "1e3", "1E+5", "0x1p4", "1_000", "Inf", "NaN", " 1", "1 ", "+", ".", "1e", "1e+", "--1", "1e309"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := isDecimal(s), decimalRE.MatchString(s); got != want {
			t.Fatalf("isDecimal(%q) = %v, want %v", s, got, want)
		}
		v, err := parseDecimal(s)
		if err == nil && (math.IsNaN(v) || math.IsInf(v, 0) || !isDecimal(s)) {
			t.Fatalf("parseDecimal(%q) accepted %v", s, v)
		}
	})
}

// FuzzJSONText: a JSON string checkJSONText accepts decodes without
// replacement characters other than those written in the input, and every
// string encoding/json writes is accepted.
func FuzzJSONText(f *testing.F) {
	for _, s := range []string{`"a"`, `"\ud800"`, `"\udc00"`, `"\ud83d\ude00"`, `"\ud800\u0041"`, `"\\ud800"`, `"\ufffd"`, "\"\xff\"", `"\u00"`, `"\ud800\"`, `"\uD800\uDFFF"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if utf8.Valid(data) {
			enc, err := json.Marshal(string(data))
			if err != nil {
				t.Fatal(err)
			}
			if err := checkJSONText(enc); err != nil {
				t.Fatalf("refused %s, written by encoding/json: %v", enc, err)
			}
		}
		var s string
		if checkJSONText(data) != nil || json.Unmarshal(data, &s) != nil {
			return
		}
		written := strings.Count(string(data), "\ufffd") + strings.Count(strings.ToLower(string(data)), `\ufffd`)
		if got := strings.Count(s, "\ufffd"); got > written {
			t.Fatalf("%q accepted, decodes to %q with %d replacement characters (%d written)", data, s, got, written)
		}
	})
}
