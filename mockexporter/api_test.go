package mockexporter_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/mockexporter"
)

func TestControlAPISeries(t *testing.T) {
	reg, clock := newTestRegistry(t)
	h := reg.Handler()

	rec := do(t, h, "POST", "/api/v1/metrics", `{"name":"app_queue_depth","type":"gauge","labels":["queue"],"range":"count","defaults":{"queue":"main"},"initial":3}`)
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	assert.Contains(t, rec.Body.String(), `"range":"count"`)

	rec = do(t, h, "GET", "/api/v1/metrics", "")
	require.Equal(t, http.StatusOK, rec.Code)
	var fams struct {
		Data []mockexporter.MetricOptions `json:"data"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &fams))
	assert.Len(t, fams.Data, 27)

	rec = do(t, h, "POST", "/api/v1/series", `{"metric":"app_queue_depth","labels":{"queue":"emails"},"value":12}`)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.JSONEq(t, `{"status":"success","data":{"metric":"app_queue_depth","type":"gauge","labels":{"queue":"emails"},"value":12,"source":{"kind":"constant","value":12}}}`, rec.Body.String())

	rec = do(t, h, "POST", "/api/v1/series", `{"metric":"mock_high_cpu_usage_percent","source":{"kind":"ramp","from":10,"to":90,"duration":"80s"}}`)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	rec = do(t, h, "POST", "/api/v1/series", `{"metric":"mock_disk_read_errors_total","add":3}`)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Contains(t, rec.Body.String(), `"value":3`)

	clock.Advance(40 * time.Second)
	rec = do(t, h, "GET", "/api/v1/series?metric=mock_high_cpu_usage_percent", "")
	require.Equal(t, http.StatusOK, rec.Code)
	var list struct {
		Data []mockexporter.SeriesInfo `json:"data"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &list))
	require.Len(t, list.Data, 1)
	assert.Equal(t, 50.0, list.Data[0].Value)
	assert.Equal(t, "ramp", list.Data[0].Source.Kind)

	rec = do(t, h, "GET", "/api/v1/series", "")
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &list))
	assert.Len(t, list.Data, 28) // 26 defaults + app_queue_depth{main} + {emails}

	rec = do(t, h, "POST", "/api/v1/series/reset", `{"metric":"mock_disk_read_errors_total"}`)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Contains(t, rec.Body.String(), `"value":0`)

	rec = do(t, h, "DELETE", "/api/v1/series", `{"metric":"app_queue_depth","labels":{"queue":"emails"}}`)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	_, ok := sampleValue(scrapeFamilies(t, h), "app_queue_depth", map[string]string{"queue": "emails"})
	assert.False(t, ok, "deleted series still exposed")

	rec = do(t, h, "POST", "/api/v1/reset", "")
	require.Equal(t, http.StatusOK, rec.Code)
	_, err := reg.Series("app_queue_depth")
	assert.ErrorIs(t, err, mockexporter.ErrUnknownMetric)
}

func TestControlAPIBadInput(t *testing.T) {
	huge := `{"metric":"mock_service_up","labels":{"service":"` + strings.Repeat("a", 2<<20) + `"},"value":1}`
	cases := []struct {
		name, method, path, body string
		code                     int
		msg                      string
	}{
		{"malformed JSON", "POST", "/api/v1/series", `{"metric":`, 400, "malformed JSON"},
		{"wrong type", "POST", "/api/v1/series", `{"metric":"mock_service_up","value":"1"}`, 400, "malformed JSON"},
		{"unknown field", "POST", "/api/v1/series", `{"metric":"mock_service_up","valu":1}`, 400, "unknown field"},
		{"trailing data", "POST", "/api/v1/series", `{"metric":"mock_service_up","value":1} x`, 400, "trailing"},
		{"NaN literal", "POST", "/api/v1/series", `{"metric":"mock_service_up","value":NaN}`, 400, "malformed JSON"},
		{"huge number", "POST", "/api/v1/series", `{"metric":"mock_high_memory_usage_bytes","value":1e400}`, 400, "malformed JSON"},
		{"negative", "POST", "/api/v1/series", `{"metric":"mock_high_memory_usage_bytes","value":-1}`, 400, "negative"},
		{"percent > 100", "POST", "/api/v1/series", `{"metric":"mock_disk_usage_percent","value":100.01}`, 400, "between 0 and 100"},
		{"status 3", "POST", "/api/v1/series", `{"metric":"mock_pod_crash_loop","value":3}`, 400, "0 or 1"},
		{"empty label", "POST", "/api/v1/series", `{"metric":"mock_service_up","labels":{"service":""},"value":1}`, 400, "must not be empty"},
		{"long label", "POST", "/api/v1/series", `{"metric":"mock_service_up","labels":{"service":"` + strings.Repeat("é", 65) + `"},"value":1}`, 400, "longer than 128"},
		{"invalid UTF-8 label", "POST", "/api/v1/series", "{\"metric\":\"mock_service_up\",\"labels\":{\"service\":\"\xff\"},\"value\":1}", 400, "not valid UTF-8"},
		{"unknown metric", "POST", "/api/v1/series", `{"metric":"mock_nope","value":1}`, 404, "unknown metric"},
		{"unknown label", "POST", "/api/v1/series", `{"metric":"mock_service_up","labels":{"zone":"a"},"value":1}`, 400, "not a label"},
		{"two operations", "POST", "/api/v1/series", `{"metric":"mock_service_up","value":1,"add":1}`, 400, "exactly one"},
		{"no operation", "POST", "/api/v1/series", `{"metric":"mock_service_up"}`, 400, "exactly one"},
		{"bad source", "POST", "/api/v1/series", `{"metric":"mock_service_up","source":{"kind":"warp"}}`, 400, "unknown source kind"},
		{"source out of range", "POST", "/api/v1/series", `{"metric":"mock_high_cpu_usage_percent","source":{"kind":"sine","base":95,"amplitude":10,"period":"1m"}}`, 400, "leave the percent range"},
		{"counter decrease", "POST", "/api/v1/series", `{"metric":"mock_connection_drops_total","add":-1}`, 400, "only rise"},
		{"observe on gauge", "POST", "/api/v1/series", `{"metric":"mock_service_up","observe":[1]}`, 400, "not valid for this metric type"},
		{"oversized body", "POST", "/api/v1/series", huge, 413, "over 1048576 bytes"},
		{"delete unknown series", "DELETE", "/api/v1/series", `{"metric":"mock_service_up","labels":{"service":"ghost"}}`, 404, "unknown series"},
		{"reset gauge", "POST", "/api/v1/series/reset", `{"metric":"mock_service_up"}`, 400, "gauge"},
		{"unknown series filter", "GET", "/api/v1/series?metric=nope", "", 404, "unknown metric"},
		{"declare duplicate", "POST", "/api/v1/metrics", `{"name":"mock_service_up"}`, 409, "already declared"},
		{"declare bad name", "POST", "/api/v1/metrics", `{"name":"bad-name"}`, 400, "not a valid metric name"},
		{"declare bad type", "POST", "/api/v1/metrics", `{"name":"x","type":"stateset"}`, 400, "gauge, counter, histogram, summary or gaugehistogram"},
		{"declare bad range", "POST", "/api/v1/metrics", `{"name":"x","range":"huge"}`, 400, "must be one of"},
		{"faults bad status", "PUT", "/api/v1/faults", `{"status":200}`, 400, "400–599"},
		{"faults long delay", "PUT", "/api/v1/faults", `{"delay":"1h"}`, 400, "between 0"},
		{"faults unknown metric", "PUT", "/api/v1/faults", `{"hide":[{"metric":"nope"}]}`, 404, "unknown metric"},
		{"faults bad label", "PUT", "/api/v1/faults", `{"hide":[{"metric":"mock_service_up","labels":{"zone":"x"}}]}`, 400, "not a label"},
		{"scenario malformed YAML", "POST", "/api/v1/scenarios", "name: [", 400, "malformed YAML"},
		{"scenario malformed JSON", "POST", "/api/v1/scenarios", `{"name":`, 400, "malformed JSON"},
		{"scenario unknown metric", "POST", "/api/v1/scenarios", `{"name":"x","phases":[{"at":"0s","set":[{"metric":"mock_nope","value":1}]}]}`, 404, "unknown metric"},
		{"scenario NaN", "POST", "/api/v1/scenarios", "name: x\nphases:\n  - at: 0s\n    set: [{metric: mock_high_cpu_usage_percent, value: .nan}]\n", 400, "finite"},
		{"scenario Inf", "POST", "/api/v1/scenarios", "name: x\nphases:\n  - at: 0s\n    set: [{metric: mock_high_memory_usage_bytes, value: .inf}]\n", 400, "finite"},
		{"scenario percent > 100", "POST", "/api/v1/scenarios", `{"name":"x","phases":[{"at":"0s","set":[{"metric":"mock_db_disk_full_percent","value":101}]}]}`, 400, "between 0 and 100"},
		{"scenario status 2", "POST", "/api/v1/scenarios", `{"name":"x","phases":[{"at":"0s","set":[{"metric":"mock_service_up","value":2}]}]}`, 400, "0 or 1"},
		{"scenario empty label", "POST", "/api/v1/scenarios", `{"name":"x","phases":[{"at":"0s","set":[{"metric":"mock_service_up","labels":{"service":""},"value":1}]}]}`, 400, "must not be empty"},
		{"scenario oversized", "POST", "/api/v1/scenarios", "name: " + strings.Repeat("x", 2<<20), 413, "over 1048576 bytes"},
		{"stop unknown scenario", "DELETE", "/api/v1/scenarios/s9", "", 404, "unknown scenario"},
		{"declare oversized", "POST", "/api/v1/metrics", `{"name":"` + strings.Repeat("x", 2<<20) + `"}`, 413, "over"},
		{"faults malformed", "PUT", "/api/v1/faults", `{"status":`, 400, "malformed JSON"},
		{"faults NaN-ish delay", "PUT", "/api/v1/faults", `{"delay":"NaNs"}`, 400, "invalid duration"},
		{"faults oversized", "PUT", "/api/v1/faults", `{"hide":[` + strings.Repeat(`{"metric":"mock_service_up"},`, 50000) + `{"metric":"mock_service_up"}]}`, 413, "over"},
		{"series negative via source", "POST", "/api/v1/series", `{"metric":"mock_high_memory_usage_bytes","source":{"kind":"constant","value":-5}}`, 400, "range"},
		{"walk interval overflow", "POST", "/api/v1/series", `{"metric":"mock_high_memory_usage_bytes","source":{"kind":"randomwalk","seed":1,"base":5,"step":1,"min":0,"max":10,"interval":"9007199254740992ns"}}`, 400, "interval"},
		{"unknown API route", "GET", "/api/v1/nope", "", 404, "no route"},
		{"unknown API version", "GET", "/api/v2/series", "", 404, "no route"},
		{"unknown top-level route", "GET", "/nope", "", 404, "no route GET /nope"},
		{"unknown top-level POST", "POST", "/metrics/extra", `{}`, 404, "no route"},
		{"unclean API path", "POST", "/api/v1/../v1/series", `{"metric":"mock_service_up","value":0}`, 404, "no route"},
		{"wrong method series", "PUT", "/api/v1/series", "", 405, "allowed: GET, POST, DELETE"},
		{"wrong method metrics", "DELETE", "/api/v1/metrics", "", 405, "allowed"},
		{"wrong method faults", "POST", "/api/v1/faults", "", 405, "allowed"},
		{"wrong method reset", "GET", "/api/v1/reset", "", 405, "allowed"},
		{"wrong method scenarios", "PATCH", "/api/v1/scenarios", "", 405, "allowed"},
		{"wrong method series reset", "GET", "/api/v1/series/reset", "", 405, "allowed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reg, _ := newTestRegistry(t)
			before := snapshot(t, reg)
			rec := do(t, reg.Handler(), tc.method, tc.path, tc.body)
			assert.Equal(t, tc.code, rec.Code, rec.Body.String())
			assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
			var body struct {
				Status string `json:"status"`
				Error  string `json:"error"`
			}
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body), rec.Body.String())
			assert.Equal(t, "error", body.Status)
			assert.NotEmpty(t, body.Error)
			assert.Contains(t, body.Error, tc.msg)
			if tc.code == http.StatusMethodNotAllowed {
				assert.NotEmpty(t, rec.Header().Get("Allow"))
			}
			assert.Equal(t, before, snapshot(t, reg), "state changed")
		})
	}
}

func TestFaults(t *testing.T) {
	reg, _ := newTestRegistry(t)
	h := reg.Handler()

	rec := do(t, h, "PUT", "/api/v1/faults", `{"status":500}`)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	rec = do(t, h, "GET", "/metrics", "")
	assert.Equal(t, http.StatusInternalServerError, rec.Code)
	assert.Contains(t, rec.Body.String(), "injected fault")
	// Only /metrics fails.
	assert.Equal(t, http.StatusOK, do(t, h, "GET", "/health", "").Code)

	rec = do(t, h, "PUT", "/api/v1/faults", `{"hide":[{"metric":"mock_service_up"},{"metric":"mock_disk_usage_percent","labels":{"device":"sdb"}}]}`)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Equal(t, http.StatusOK, do(t, h, "POST", "/simulate/disk-usage/sdb/50", "").Code)
	mfs := scrapeFamilies(t, h)
	assert.NotContains(t, mfs, "mock_service_up")
	_, ok := sampleValue(mfs, "mock_disk_usage_percent", map[string]string{"device": "sdb", "mountpoint": "/data"})
	assert.False(t, ok, "hidden series exposed")
	_, ok = sampleValue(mfs, "mock_disk_usage_percent", map[string]string{"device": "sda", "mountpoint": "/data"})
	assert.True(t, ok, "other series of the family must stay")

	rec = do(t, h, "GET", "/api/v1/faults", "")
	assert.Contains(t, rec.Body.String(), `"metric":"mock_service_up"`)
	rec = do(t, h, "DELETE", "/api/v1/faults", "")
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Contains(t, scrapeFamilies(t, h), "mock_service_up")
}

func TestFaultDelay(t *testing.T) {
	reg, _ := newTestRegistry(t)
	srv := httptest.NewServer(reg.Handler())
	defer srv.Close()
	require.NoError(t, reg.SetFaults(mockexporter.Faults{Delay: mockexporter.Duration(300 * time.Millisecond)}))

	start := time.Now()
	resp, err := http.Get(srv.URL + "/metrics")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond)

	// A client that gives up is not kept waiting for the whole delay.
	require.NoError(t, reg.SetFaults(mockexporter.Faults{Delay: mockexporter.Duration(time.Minute)}))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/metrics", nil)
	_, err = http.DefaultClient.Do(req)
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestMetricsContentNegotiation(t *testing.T) {
	reg, _ := newTestRegistry(t)
	h := reg.Handler()
	require.Equal(t, http.StatusOK, do(t, h, "POST", "/simulate/cpu-usage/78", "").Code)

	rec := do(t, h, "GET", "/metrics", "")
	assert.True(t, strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain; version=0.0.4"), rec.Header().Get("Content-Type"))

	rec = do(t, h, "GET", "/metrics", "", "Accept", "application/openmetrics-text;version=1.0.0")
	assert.True(t, strings.HasPrefix(rec.Header().Get("Content-Type"), "application/openmetrics-text"), rec.Header().Get("Content-Type"))
	assert.True(t, strings.HasSuffix(rec.Body.String(), "# EOF\n"))
	assert.Contains(t, rec.Body.String(), `mock_high_cpu_usage_percent{instance="mock-app-1",service="mock-service"} 78`)

	rec = do(t, h, "GET", "/metrics", "", "Accept-Encoding", "gzip")
	assert.Equal(t, "gzip", rec.Header().Get("Content-Encoding"))
	mfs := parseText(t, gunzip(t, rec.Body.Bytes()))
	v, ok := sampleValue(mfs, "mock_high_cpu_usage_percent", map[string]string{"instance": "mock-app-1", "service": "mock-service"})
	require.True(t, ok)
	assert.Equal(t, 78.0, v)
}
