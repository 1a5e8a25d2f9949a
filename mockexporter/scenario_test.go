package mockexporter_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/mockexporter"
)

const memoryScenarioYAML = `
name: memory-pressure
phases:
  - at: 0s
    set:
      - metric: mock_high_cpu_usage_percent
        value: 78
  - at: 1m
    set:
      - metric: mock_high_cpu_usage_percent
        source: {kind: ramp, from: 78, to: 95, duration: 5m}
      - metric: mock_disk_read_errors_total
        labels: {device: sdb}
        value: 2
  - at: 10m
    set:
      - metric: mock_high_cpu_usage_percent
        value: 40
`

func TestScenarioPhases(t *testing.T) {
	reg, clock := newTestRegistry(t)
	require.NoError(t, reg.SetValue("mock_high_cpu_usage_percent", nil, 12))
	sc, err := mockexporter.ParseScenario([]byte(memoryScenarioYAML))
	require.NoError(t, err)
	info, err := reg.StartScenario(sc)
	require.NoError(t, err)
	assert.Equal(t, mockexporter.ScenarioRunning, info.State)
	assert.Equal(t, 0, info.Phase)

	cpu := func() float64 {
		v, err := reg.Value("mock_high_cpu_usage_percent", nil)
		require.NoError(t, err)
		return v
	}
	assert.Equal(t, 78.0, cpu())
	clock.Advance(time.Minute)
	assert.Equal(t, 78.0, cpu())
	clock.Advance(150 * time.Second) // half way up the ramp
	assert.InDelta(t, 86.5, cpu(), 1e-9)
	clock.Advance(5 * time.Minute) // 8m30s: ramp done
	assert.InDelta(t, 95, cpu(), 1e-9)
	clock.Advance(90 * time.Second) // 10m: recovery
	assert.Equal(t, 40.0, cpu())

	// The counter rose at 2/s from 1m to 10m: 1080.
	errs, err := reg.Value("mock_disk_read_errors_total", mockexporter.Labels{"device": "sdb"})
	require.NoError(t, err)
	assert.InDelta(t, 1080, errs, 1e-6)

	got, err := reg.Scenario(info.ID)
	require.NoError(t, err)
	assert.Equal(t, 2, got.Phase)
	assert.Equal(t, 10*time.Minute, time.Duration(got.Elapsed))

	// Stopping gives the series back their own source; counters keep their total.
	stopped, err := reg.StopScenario(info.ID)
	require.NoError(t, err)
	assert.Equal(t, mockexporter.ScenarioStopped, stopped.State)
	assert.Equal(t, 12.0, cpu())
	clock.Advance(time.Minute)
	errs2, _ := reg.Value("mock_disk_read_errors_total", mockexporter.Labels{"device": "sdb"})
	assert.InDelta(t, errs, errs2, 1e-6)

	_, err = reg.StopScenario("s999")
	assert.ErrorIs(t, err, mockexporter.ErrUnknownScenario)
}

func TestScenarioDurationAndRepeat(t *testing.T) {
	reg, clock := newTestRegistry(t)
	flap := mockexporter.Scenario{
		Name: "flap", Duration: mockexporter.Duration(20 * time.Second), Repeat: true,
		Phases: []mockexporter.Phase{
			{At: 0, Set: []mockexporter.Target{{Metric: "mock_service_up", Src: mockexporter.Constant(0)}}},
			{At: mockexporter.Duration(10 * time.Second), Set: []mockexporter.Target{{Metric: "mock_service_up", Src: mockexporter.Constant(1)}}},
		},
	}
	_, err := reg.StartScenario(flap)
	require.NoError(t, err)
	var seen []float64
	for range 4 {
		v, _ := reg.Value("mock_service_up", nil)
		seen = append(seen, v)
		clock.Advance(10 * time.Second)
	}
	assert.Equal(t, []float64{0, 1, 0, 1}, seen)

	once := flap
	once.Name, once.Repeat = "once", false
	once.Phases = once.Phases[:1]
	info, err := reg.StartScenario(once)
	require.NoError(t, err)
	v, _ := reg.Value("mock_service_up", nil)
	assert.Equal(t, 0.0, v)
	clock.Advance(25 * time.Second)
	got, _ := reg.Scenario(info.ID)
	assert.Equal(t, mockexporter.ScenarioFinished, got.State)
	// "once" is over; "flap" (started 40 s ago, 65 s now: second half) drives it.
	v, _ = reg.Value("mock_service_up", nil)
	assert.Equal(t, 0.0, v)
	clock.Advance(5 * time.Second)
	v, _ = reg.Value("mock_service_up", nil)
	assert.Equal(t, 1.0, v)
	assert.Len(t, reg.Scenarios(), 2)
}

func TestParseScenarioErrors(t *testing.T) {
	cases := map[string]string{
		"empty":            "",
		"bad JSON":         `{"name":`,
		"unknown field":    `{"name":"x","phases":[{"at":"0s","set":[{"metric":"m","value":1}]}],"speed":2}`,
		"trailing":         `{"name":"x","phases":[{"at":"0s","set":[{"metric":"m","value":1}]}]} {}`,
		"bad YAML":         "name: [",
		"no name":          `{"phases":[{"at":"0s","set":[{"metric":"m","value":1}]}]}`,
		"no phases":        `{"name":"x"}`,
		"no set":           `{"name":"x","phases":[{"at":"0s"}]}`,
		"value and source": `{"name":"x","phases":[{"at":"0s","set":[{"metric":"m","value":1,"source":{"kind":"constant"}}]}]}`,
		"neither":          `{"name":"x","phases":[{"at":"0s","set":[{"metric":"m"}]}]}`,
		"negative at":      `{"name":"x","phases":[{"at":"-1s","set":[{"metric":"m","value":1}]}]}`,
		"at after end":     `{"name":"x","duration":"10s","phases":[{"at":"10s","set":[{"metric":"m","value":1}]}]}`,
		"repeat no dur":    `{"name":"x","repeat":true,"phases":[{"at":"0s","set":[{"metric":"m","value":1}]}]}`,
		"bad duration":     `{"name":"x","phases":[{"at":"soon","set":[{"metric":"m","value":1}]}]}`,
		"YAML unknown key": "name: x\nphase: []\n",
	}
	for name, doc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := mockexporter.ParseScenario([]byte(doc))
			var ve *mockexporter.ValidationError
			assert.ErrorAs(t, err, &ve)
		})
	}
}

func TestParseScenarioKeepsTheDecoderError(t *testing.T) {
	_, err := mockexporter.ParseScenario([]byte(`{"name":1}`))
	var ute *json.UnmarshalTypeError
	require.ErrorAs(t, err, &ute, "the JSON decoder's error is wrapped")
	var ve *mockexporter.ValidationError
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, "scenario", ve.Field)
}

func TestStartScenarioValidatesAgainstRegistry(t *testing.T) {
	reg, _ := newTestRegistry(t)
	before := snapshot(t, reg)
	cases := map[string]string{
		"unknown metric":  `{"name":"x","phases":[{"at":"0s","set":[{"metric":"nope","value":1}]}]}`,
		"percent > 100":   `{"name":"x","phases":[{"at":"0s","set":[{"metric":"mock_high_cpu_usage_percent","value":120}]}]}`,
		"source too high": `{"name":"x","phases":[{"at":"0s","set":[{"metric":"mock_high_cpu_usage_percent","source":{"kind":"ramp","from":0,"to":150,"duration":"1m"}}]}]}`,
		"bad label":       `{"name":"x","phases":[{"at":"0s","set":[{"metric":"mock_service_up","labels":{"service":""},"value":1}]}]}`,
		"second bad":      `{"name":"x","phases":[{"at":"0s","set":[{"metric":"mock_service_up","labels":{"service":"new"},"value":1},{"metric":"mock_service_up","value":3}]}]}`,
		"negative rate":   `{"name":"x","phases":[{"at":"0s","set":[{"metric":"mock_connection_drops_total","value":-1}]}]}`,
	}
	for name, doc := range cases {
		t.Run(name, func(t *testing.T) {
			sc, err := mockexporter.ParseScenario([]byte(doc))
			require.NoError(t, err)
			_, err = reg.StartScenario(sc)
			require.Error(t, err)
			assert.Equal(t, before, snapshot(t, reg), "state changed")
		})
	}
}

func TestScenarioHTTP(t *testing.T) {
	reg, clock := newTestRegistry(t)
	h := reg.Handler()

	rec := do(t, h, "POST", "/api/v1/scenarios", memoryScenarioYAML, "Content-Type", "application/yaml")
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	var created struct {
		Status string                    `json:"status"`
		Data   mockexporter.ScenarioInfo `json:"data"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &created))
	assert.Equal(t, "success", created.Status)
	id := created.Data.ID
	assert.Equal(t, "/api/v1/scenarios/"+id, rec.Header().Get("Location"))

	jsonDoc := `{"name":"cpu-blip","phases":[{"at":"0s","set":[{"metric":"mock_low_cpu_idle_percent","value":5}]}]}`
	rec = do(t, h, "POST", "/api/v1/scenarios", jsonDoc, "Content-Type", "application/json")
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())

	clock.Advance(time.Minute + 150*time.Second)
	v, ok := sampleValue(scrapeFamilies(t, h), "mock_high_cpu_usage_percent", map[string]string{"instance": "mock-app-1", "service": "mock-service"})
	require.True(t, ok)
	assert.InDelta(t, 86.5, v, 1e-9)

	rec = do(t, h, "GET", "/api/v1/scenarios", "")
	require.Equal(t, http.StatusOK, rec.Code)
	var list struct {
		Data []mockexporter.ScenarioInfo `json:"data"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &list))
	require.Len(t, list.Data, 2)
	assert.Equal(t, "memory-pressure", list.Data[0].Name)
	assert.Equal(t, 1, list.Data[0].Phase)

	rec = do(t, h, "GET", "/api/v1/scenarios/"+id, "")
	assert.Equal(t, http.StatusOK, rec.Code)
	rec = do(t, h, "DELETE", "/api/v1/scenarios/"+id, "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Contains(t, rec.Body.String(), `"state":"stopped"`)
	v, _ = sampleValue(scrapeFamilies(t, h), "mock_high_cpu_usage_percent", map[string]string{"instance": "mock-app-1", "service": "mock-service"})
	assert.Equal(t, 0.0, v)

	rec = do(t, h, "DELETE", "/api/v1/scenarios/s404", "")
	assert.Equal(t, http.StatusNotFound, rec.Code)
	assert.JSONEq(t, `{"status":"error","error":"mockexporter: unknown scenario: \"s404\""}`, rec.Body.String())
	rec = do(t, h, "PUT", "/api/v1/scenarios/"+id, "")
	assert.Equal(t, http.StatusMethodNotAllowed, rec.Code)
	rec = do(t, h, "POST", "/api/v1/scenarios", "name: [", "Content-Type", "application/yaml")
	assert.Equal(t, http.StatusBadRequest, rec.Code)
	rec = do(t, h, "POST", "/api/v1/scenarios", "name: x", "Content-Type", "application/json")
	assert.Equal(t, http.StatusBadRequest, rec.Code)
}

func TestFinishedScenariosFreeTheirSlot(t *testing.T) {
	reg, clock := newTestRegistry(t)
	short := mockexporter.Scenario{
		Name: "blip", Duration: mockexporter.Duration(time.Second),
		Phases: []mockexporter.Phase{{Set: []mockexporter.Target{{Metric: "mock_connection_drops_total", Src: mockexporter.Constant(1)}}}},
	}
	// Far more short scenarios than may run at once, one after the other:
	// the finished ones must not count as running.
	for i := range 250 {
		_, err := reg.StartScenario(short)
		require.NoError(t, err, "scenario %d", i)
		clock.Advance(2 * time.Second)
	}
	// Each drove the counter at 1/s for 1 s.
	v, err := reg.Value("mock_connection_drops_total", nil)
	require.NoError(t, err)
	assert.InDelta(t, 250, v, 1e-6)
	list := reg.Scenarios()
	assert.LessOrEqual(t, len(list), 101, "history is bounded")
	for _, si := range list {
		assert.Equal(t, mockexporter.ScenarioFinished, si.State, si.ID)
	}

	// Scenarios that keep running do hit the limit, with ErrLimit (413).
	forever := short
	forever.Duration = 0
	var err2 error
	for range 200 {
		if _, err2 = reg.StartScenario(forever); err2 != nil {
			break
		}
	}
	assert.ErrorIs(t, err2, mockexporter.ErrLimit)
	before := snapshot(t, reg)
	rec := do(t, reg.Handler(), "POST", "/api/v1/scenarios", `{"name":"one-more","phases":[{"at":"0s","set":[{"metric":"mock_service_up","value":0}]}]}`)
	assert.Equal(t, http.StatusRequestEntityTooLarge, rec.Code, rec.Body.String())
	assert.Contains(t, rec.Body.String(), "is 100", "the message names the limit's value")
	assert.Equal(t, before, snapshot(t, reg), "state changed")
}
