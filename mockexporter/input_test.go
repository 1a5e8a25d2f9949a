package mockexporter_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBadTextRefused: invalid UTF-8, lone surrogates, control characters,
// non-decimal numbers and trailing data are 400 wherever text enters (seed
// paths, JSON bodies, scenario files), and change nothing.
func TestBadTextRefused(t *testing.T) {
	series := func(label string) string {
		return `{"metric":"mock_service_up","labels":{"service":"` + label + `"},"value":1}`
	}
	scenarioJSON := func(label string) string {
		return `{"name":"x","phases":[{"at":"0s","set":[{"metric":"mock_service_up","labels":{"service":"` + label + `"},"value":1}]}]}`
	}
	scenarioYAML := func(value string) string {
		return "name: x\nphases:\n  - at: 0s\n    set: [{metric: mock_high_memory_usage_bytes, value: " + value + "}]\n"
	}
	cases := []struct {
		name, method, path, body, msg string
	}{
		// /simulate/...{value}: decimal numbers only.
		{"hex float", "POST", "/simulate/cpu-usage/0x1p4", "", "not a finite number"},
		{"hex float in a label route", "POST", "/simulate/disk-usage/sda/0x1p4", "", "not a finite number"},
		{"underscores", "POST", "/simulate/memory-usage/1_000", "", "not a finite number"},
		{"Inf", "POST", "/simulate/memory-usage/Inf", "", "not a finite number"},
		{"infinity", "POST", "/simulate/memory-usage/infinity", "", "not a finite number"},
		{"+Inf", "POST", "/simulate/memory-usage/+Inf", "", "not a finite number"},
		{"NaN", "POST", "/simulate/cpu-usage/NaN", "", "not a finite number"},
		{"leading space", "POST", "/simulate/cpu-usage/%2078", "", "not a finite number"},
		{"trailing space", "POST", "/simulate/cpu-usage/78%20", "", "not a finite number"},
		{"trailing newline", "POST", "/simulate/cpu-usage/78%0A", "", "not a finite number"},
		{"exponent without digits", "POST", "/simulate/cpu-usage/1e", "", "not a finite number"},
		{"lone dot", "POST", "/simulate/cpu-usage/.", "", "not a finite number"},
		{"overflow", "POST", "/simulate/memory-usage/1e309", "", "not a finite number"},
		// Seed path label segments.
		{"NUL in a path label", "POST", "/simulate/disk-usage/sd%00a/85", "", "control character U+0000"},
		{"control character in a path label", "POST", "/simulate/disk-usage/sd%01a/85", "", "control character U+0001"},
		{"DEL in a path label", "POST", "/simulate/disk-usage/sd%7Fa/85", "", "control character U+007F"},
		{"newline in a path label", "POST", "/simulate/disk-read-error/sd%0Aa", "", "control character"},
		{"invalid UTF-8 in a path label", "POST", "/simulate/disk-usage/%ff/85", "", "not valid UTF-8"},
		{"encoded surrogate in a path label", "POST", "/simulate/disk-usage/%ED%A0%80/85", "", "not valid UTF-8"},
		// JSON bodies.
		{"invalid UTF-8 in JSON", "POST", "/api/v1/series", series("\xc3\x28"), "not valid UTF-8"},
		{"raw surrogate bytes in JSON", "POST", "/api/v1/series", series("\xed\xa0\x80"), "not valid UTF-8"},
		{"lone high surrogate", "POST", "/api/v1/series", series(`\ud800`), "lone surrogate"},
		{"lone low surrogate", "POST", "/api/v1/series", series(`a\uDC00`), "lone surrogate"},
		{"high surrogate then a letter", "POST", "/api/v1/series", series(`\ud800x`), "lone surrogate"},
		{"high surrogate then a non-surrogate escape", "POST", "/api/v1/series", series(`\ud800\u0041`), "lone surrogate"},
		{"two high surrogates", "POST", "/api/v1/series", series(`\ud800\ud800`), "lone surrogate"},
		{"surrogate in a label name position", "POST", "/api/v1/series", `{"metric":"mock_service_up","labels":{"\ud800":"a"},"value":1}`, "lone surrogate"},
		{"NUL escape", "POST", "/api/v1/series", series(`a\u0000b`), "control character U+0000"},
		{"unit separator", "POST", "/api/v1/series", series(`a\u001fb`), "control character U+001F"},
		{"DEL", "POST", "/api/v1/series", series("a\x7fb"), "control character U+007F"},
		{"trailing garbage", "POST", "/api/v1/series", series("a") + " x", "trailing"},
		{"two objects", "POST", "/api/v1/series", series("a") + series("b"), "trailing"},
		{"hex number in JSON", "POST", "/api/v1/series", `{"metric":"mock_service_up","value":0x1}`, "malformed JSON"},
		{"NUL in a delete", "DELETE", "/api/v1/series", `{"metric":"mock_service_up","labels":{"service":"\u0000"}}`, "control character"},
		{"NUL in a default", "POST", "/api/v1/metrics", `{"name":"g","labels":["a"],"defaults":{"a":"\u0000"}}`, "control character"},
		{"NUL in help", "POST", "/api/v1/metrics", `{"name":"g","help":"a\u0000b"}`, "control character U+0000"},
		{"surrogate in help", "POST", "/api/v1/metrics", `{"name":"g","help":"\udfff"}`, "lone surrogate"},
		{"NUL in a fault's labels", "PUT", "/api/v1/faults", `{"hide":[{"metric":"mock_service_up","labels":{"service":"\u0000"}}]}`, "control character"},
		{"trailing data after faults", "PUT", "/api/v1/faults", `{"status":503} {}`, "trailing"},
		// Scenario files, JSON and YAML.
		{"scenario lone surrogate", "POST", "/api/v1/scenarios", scenarioJSON(`\ud800`), "lone surrogate"},
		{"scenario NUL label", "POST", "/api/v1/scenarios", scenarioJSON(`\u0000`), "control character"},
		{"scenario invalid UTF-8", "POST", "/api/v1/scenarios", scenarioJSON("\xff"), "not valid UTF-8"},
		{"scenario trailing JSON", "POST", "/api/v1/scenarios", scenarioJSON("a") + `{}`, "trailing"},
		{"scenario name with a control character", "POST", "/api/v1/scenarios", `{"name":"a\u0007","phases":[{"at":"0s","set":[{"metric":"mock_service_up","value":1}]}]}`, "control characters"},
		{"YAML hex number", "POST", "/api/v1/scenarios", scenarioYAML("0x10"), "not a finite decimal number"},
		{"YAML octal number", "POST", "/api/v1/scenarios", scenarioYAML("0o17"), "not a finite decimal number"},
		{"YAML underscores", "POST", "/api/v1/scenarios", scenarioYAML("1_000"), "not a finite decimal number"},
		{"YAML hex duration", "POST", "/api/v1/scenarios", "name: x\nphases:\n  - at: 0x10\n    set: [{metric: mock_service_up, value: 1}]\n", "not a finite decimal number"},
		{"YAML NUL escape", "POST", "/api/v1/scenarios", "name: x\nphases:\n  - at: 0s\n    set: [{metric: mock_service_up, labels: {service: \"a\\0b\"}, value: 1}]\n", "control character"},
		{"YAML surrogate escape", "POST", "/api/v1/scenarios", "name: x\nphases:\n  - at: 0s\n    set: [{metric: mock_service_up, labels: {service: \"\\ud800\"}, value: 1}]\n", "malformed YAML"},
		{"YAML second document", "POST", "/api/v1/scenarios", scenarioYAML("1") + "---\nname: y\n", "trailing"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reg, _ := newTestRegistry(t)
			before := snapshot(t, reg)
			beforeMetrics := do(t, reg.Handler(), "GET", "/api/v1/series", "").Body.String()
			rec := do(t, reg.Handler(), tc.method, tc.path, tc.body)
			assert.Equal(t, http.StatusBadRequest, rec.Code, rec.Body.String())
			assert.Contains(t, rec.Body.String(), tc.msg)
			assert.Equal(t, before, snapshot(t, reg), "state changed")
			assert.Equal(t, beforeMetrics, do(t, reg.Handler(), "GET", "/api/v1/series", "").Body.String())
		})
	}
}

// TestGoodTextAccepted: the forms next to the refused ones still work.
func TestGoodTextAccepted(t *testing.T) {
	cases := []struct {
		name, method, path, body string
	}{
		{"integer", "POST", "/simulate/cpu-usage/78", ""},
		{"fraction", "POST", "/simulate/cpu-usage/78.5", ""},
		{"leading dot", "POST", "/simulate/cpu-usage/.5", ""},
		{"trailing dot", "POST", "/simulate/cpu-usage/5.", ""},
		{"exponent", "POST", "/simulate/memory-usage/1.5E+9", ""},
		{"plus sign", "POST", "/simulate/cpu-usage/+5", ""},
		{"escaped surrogate pair", "POST", "/api/v1/series", `{"metric":"mock_service_up","labels":{"service":"\ud83d\ude00"},"value":1}`},
		{"escaped backslash before u", "POST", "/api/v1/series", `{"metric":"mock_service_up","labels":{"service":"\\ud800"},"value":1}`},
		{"literal U+FFFD", "POST", "/api/v1/series", `{"metric":"mock_service_up","labels":{"service":"\ufffd�"},"value":1}`},
		{"tab and newline in help", "POST", "/api/v1/metrics", `{"name":"g","help":"a\tb\nc"}`},
		{"tab and newline in a label value", "POST", "/api/v1/series", `{"metric":"mock_service_up","labels":{"service":"new\nline\tx"},"value":1}`},
		{"YAML decimal numbers", "POST", "/api/v1/scenarios", "name: x\nphases:\n  - at: 90\n    set: [{metric: mock_high_memory_usage_bytes, value: 1.5e3}]\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reg, _ := newTestRegistry(t)
			rec := do(t, reg.Handler(), tc.method, tc.path, tc.body)
			require.Less(t, rec.Code, 300, rec.Body.String())
		})
	}
}
