package mockexporter_test

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/promflow/promflow/mockexporter"
)

var fuzzMethods = []string{"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"}

// FuzzControlAPI sends arbitrary methods, paths and bodies to the control
// API and the seed routes: nothing may panic or answer 5xx, API answers are
// JSON, and a 4xx leaves the registry's state unchanged.
func FuzzControlAPI(f *testing.F) {
	seeds := []struct {
		m          uint8
		path, body string
	}{
		{1, "/api/v1/series", `{"metric":"mock_high_cpu_usage_percent","value":78}`},
		{1, "/api/v1/series", `{"metric":"mock_high_cpu_usage_percent","source":{"kind":"ramp","from":1,"to":2,"duration":"1m"}}`},
		{1, "/api/v1/series", `{"metric":"mock_disk_read_errors_total","add":1}`},
		{1, "/api/v1/series", `{"metric":"mock_service_up","labels":{"service":""},"value":1}`},
		{1, "/api/v1/series", `{"metric":"mock_high_cpu_usage_percent","source":{"kind":"sum","sources":[{"kind":"noise","seed":1,"base":50,"amplitude":5}]}}`},
		{3, "/api/v1/series", `{"metric":"mock_service_up"}`},
		{1, "/api/v1/series/reset", `{"metric":"mock_disk_read_errors_total"}`},
		{1, "/api/v1/metrics", `{"name":"h","type":"histogram","buckets":[1,2],"labels":["a"]}`},
		{1, "/api/v1/scenarios", `{"name":"x","phases":[{"at":"0s","set":[{"metric":"mock_service_up","value":0}]}]}`},
		{1, "/api/v1/scenarios", "name: x\nphases:\n  - at: 1m\n    set:\n      - metric: mock_service_up\n        value: 1\n"},
		{3, "/api/v1/scenarios/s1", ""},
		{2, "/api/v1/faults", `{"status":503,"delay":"1s","hide":[{"metric":"mock_service_up"}]}`},
		{1, "/api/v1/reset", ""},
		{1, "/simulate/disk-usage/sda/85", ""},
		{1, "/simulate/cpu-usage/abc", ""},
		{0, "/api/v1/series?metric=mock_service_up", ""},
		{1, "/api/v1/metrics", `{"name":"wide","range":"any"}`},
		{1, "/api/v1/metrics", `{"name":"h","type":"histogram","labels":["le"],"defaults":{"le":"x"}}`},
		{1, "/api/v1/series", `{"metric":"mock_high_memory_usage_bytes","source":{"kind":"randomwalk","seed":1,"base":5,"step":1,"min":0,"max":10,"interval":"9007199254740992ns"}}`},
		{1, "/api/v1/series", `{"metric":"mock_connection_drops_total","source":{"kind":"ramp","from":0,"to":1.7e308,"duration":"1ns"}}`},
		{1, "/api/v1/series", `{"metric":"mock_high_memory_usage_bytes","source":{"kind":"randomwalk","seed":3,"base":1,"step":1e300,"min":0,"max":1.7e308}}`},
		// Issue 12: bad text and numbers, budgets (m >= 128 selects a
		// registry with tight budgets; 133 % 6 is POST).
		{1, "/simulate/cpu-usage/0x1p4", ""},
		{1, "/simulate/memory-usage/1_000", ""},
		{1, "/simulate/memory-usage/+Inf", ""},
		{1, "/simulate/cpu-usage/%2078", ""},
		{1, "/simulate/disk-usage/sd%00a/85", ""},
		{1, "/simulate/disk-usage/%ED%A0%80/85", ""},
		{1, "/api/v1/series", `{"metric":"mock_service_up","labels":{"service":"\ud800"},"value":1}`},
		{1, "/api/v1/series", `{"metric":"mock_service_up","labels":{"service":"\ud800\u0041"},"value":1}`},
		{1, "/api/v1/series", `{"metric":"mock_service_up","labels":{"service":"\ud83d\ude00"},"value":1}`},
		{1, "/api/v1/series", `{"metric":"mock_service_up","labels":{"service":"a\u0000"},"value":1}`},
		{1, "/api/v1/series", "{\"metric\":\"mock_service_up\",\"labels\":{\"service\":\"\xed\xa0\x80\"},\"value\":1}"},
		{1, "/api/v1/series", `{"metric":"mock_service_up","value":1} x`},
		{1, "/api/v1/series", `{"metric":"mock_service_up","value":1}{"metric":"mock_service_up","value":0}`},
		{1, "/api/v1/metrics", `{"name":"g","help":"a\u0000"}`},
		{1, "/api/v1/metrics", `{"name":"h","type":"histogram","buckets":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,58,59,60,61,62,63,64,65]}`},
		{133, "/api/v1/metrics", `{"name":"h","type":"histogram","labels":["a"],"defaults":{"a":"x"},"buckets":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32]}`},
		{133, "/api/v1/series", `{"metric":"mock_high_cpu_usage_percent","labels":{"instance":"i1"},"source":{"kind":"steps","values":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50],"every":"1s"}}`},
		{133, "/api/v1/scenarios", `{"name":"grow","phases":[{"at":"0s","set":[{"metric":"mock_service_up","labels":{"service":"a"},"value":1},{"metric":"mock_service_up","labels":{"service":"b"},"value":1},{"metric":"mock_service_up","labels":{"service":"c"},"value":1}]}]}`},
		{133, "/simulate/disk-usage/" + strings.Repeat("a", 30) + "/85", ""},
		{1, "/api/v1/scenarios", "name: x\nphases:\n  - at: 0x10\n    set: [{metric: mock_service_up, value: 1}]\n"},
		{1, "/api/v1/scenarios", "name: x\nphases:\n  - at: 0s\n    set: [{metric: mock_service_up, value: 1}]\n---\nname: y\n"},
		{3, "/api/v1/series", `{"metric":"mock_service_up","labels":{"service":"mock-service"}}`},
		{0, "/api/v1/usage", ""},
	}
	for _, s := range seeds {
		f.Add(s.m, s.path, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, m uint8, path string, body []byte) {
		if !strings.HasPrefix(path, "/api/") && !strings.HasPrefix(path, "/simulate/") {
			path = "/api/v1/" + path
		}
		u, err := url.Parse("http://mock" + path)
		if err != nil {
			u = &url.URL{Scheme: "http", Host: "mock", Path: path}
		}
		reg, clock := newTestRegistry(t)
		if m >= 128 {
			reg = mockexporter.New(tightBudgets(clock))
		}
		h := reg.Handler()
		before := snapshot(t, reg)

		req := httptest.NewRequest("GET", "/", nil)
		req.Method = fuzzMethods[int(m)%len(fuzzMethods)]
		req.URL = u
		req.RequestURI = ""
		req.Body = httpBody(body)
		if bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")) {
			req.Header.Set("Content-Type", "application/json")
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)

		if rec.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", req.Method, path, body, rec.Code, rec.Body.String())
		}
		if strings.HasPrefix(u.Path, "/api/") && req.Method != "HEAD" && !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%s %s: answer is not JSON: %q", req.Method, path, rec.Body.String())
		}
		if rec.Code >= 400 {
			if after := snapshot(t, reg); after != before {
				t.Fatalf("%s %s %q answered %d but changed the state", req.Method, path, body, rec.Code)
			}
		}
		// Whatever was accepted, the exposition stays valid and the API
		// keeps answering, now and an hour later (counters integrate).
		g := prometheus.NewPedanticRegistry()
		g.MustRegister(reg)
		for _, step := range []time.Duration{0, time.Hour} {
			clock.Advance(step)
			mfs, err := g.Gather()
			if err != nil {
				t.Fatalf("%s %s %q: gather after the request (+%v): %v", req.Method, path, body, step, err)
			}
			// The text exposition parses back (catches, e.g., a histogram
			// label "le" clashing with the bucket label).
			var buf bytes.Buffer
			enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
			for _, mf := range mfs {
				if err := enc.Encode(mf); err != nil {
					t.Fatalf("%s %s %q: encoding (+%v): %v", req.Method, path, body, step, err)
				}
			}
			if u := reg.Usage(); int64(buf.Len()) > u.ExpositionBytes ||
				(u.MaxExpositionBytes >= 0 && u.ExpositionBytes > u.MaxExpositionBytes) ||
				(u.MaxBytes >= 0 && u.Bytes > u.MaxBytes) || u.Series > u.MaxSeries {
				t.Fatalf("%s %s %q: exposition of %d bytes, usage %+v: over a budget or over the estimate", req.Method, path, body, buf.Len(), u)
			}
			parser := expfmt.NewTextParser(model.LegacyValidation)
			if _, err := parser.TextToMetricFamilies(&buf); err != nil {
				t.Fatalf("%s %s %q: exposition does not parse (+%v): %v", req.Method, path, body, step, err)
			}
			if rec := do(t, h, "GET", "/api/v1/series", ""); rec.Code != 200 {
				t.Fatalf("%s %s %q: listing series (+%v): %d %s", req.Method, path, body, step, rec.Code, rec.Body.String())
			}
		}
	})
}

// tightBudgets are options whose budgets leave room for a few series over
// the catalogue, so the fuzzer reaches every refusal.
func tightBudgets(clock *fakeClock) mockexporter.Options {
	u := mockexporter.New(mockexporter.Options{Logger: discardLogger()}).Usage()
	return mockexporter.Options{
		Now: clock.Now, Logger: discardLogger(),
		MaxSeries: u.Series + 4, MaxBytes: u.Bytes + 3000, MaxExpositionBytes: u.ExpositionBytes + 1500,
		MaxBuckets: 8, MaxLabels: 3, MaxLabelValueBytes: 32,
	}
}
