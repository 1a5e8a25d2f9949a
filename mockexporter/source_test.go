package mockexporter_test

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/promflow/promflow/mockexporter"
)

var t0 = time.Date(2026, 2, 10, 5, 35, 0, 0, time.UTC)

func TestSourceValues(t *testing.T) {
	epoch := time.Unix(0, 0).UTC()
	cases := []struct {
		name    string
		src     mockexporter.Source
		now     time.Time
		elapsed time.Duration
		want    float64
	}{
		{"constant", mockexporter.Constant(42), t0, time.Hour, 42},
		{"steps first", mockexporter.Steps{Values: []float64{1, 2, 3}, Every: time.Minute}, t0, 30 * time.Second, 1},
		{"steps second", mockexporter.Steps{Values: []float64{1, 2, 3}, Every: time.Minute}, t0, 90 * time.Second, 2},
		{"steps hold last", mockexporter.Steps{Values: []float64{1, 2, 3}, Every: time.Minute}, t0, time.Hour, 3},
		{"steps repeat", mockexporter.Steps{Values: []float64{1, 2, 3}, Every: time.Minute, Repeat: true}, t0, 4*time.Minute + time.Second, 2},
		{"ramp start", mockexporter.Ramp{From: 78, To: 95, Duration: 5 * time.Minute}, t0, 0, 78},
		{"ramp middle", mockexporter.Ramp{From: 78, To: 98, Duration: 4 * time.Minute}, t0, 2 * time.Minute, 88},
		{"ramp holds", mockexporter.Ramp{From: 78, To: 95, Duration: 5 * time.Minute}, t0, time.Hour, 95},
		{"ramp down", mockexporter.Ramp{From: 100, To: 0, Duration: 100 * time.Second}, t0, 25 * time.Second, 75},
		{"sine zero phase", mockexporter.Sine{Base: 50, Amplitude: 10, Period: time.Minute}, epoch, 0, 50},
		{"sine quarter", mockexporter.Sine{Base: 50, Amplitude: 10, Period: time.Minute}, epoch.Add(15 * time.Second), 0, 60},
		{"sine three quarters", mockexporter.Sine{Base: 50, Amplitude: 10, Period: time.Minute}, epoch.Add(45 * time.Second), 0, 40},
		{"square high", mockexporter.Square{Low: 0, High: 1, Period: time.Minute, Duty: 0.25}, epoch.Add(10 * time.Second), 0, 1},
		{"square low", mockexporter.Square{Low: 0, High: 1, Period: time.Minute, Duty: 0.25}, epoch.Add(20 * time.Second), 0, 0},
		{"square default duty", mockexporter.Square{Low: 2, High: 5, Period: time.Minute}, epoch.Add(29 * time.Second), 0, 5},
		{"square next period", mockexporter.Square{Low: 2, High: 5, Period: time.Minute}, epoch.Add(61 * time.Second), 0, 5},
		{"spike before", mockexporter.Spike{Base: 10, Height: 80, At: time.Minute, Width: 10 * time.Second}, t0, 59 * time.Second, 10},
		{"spike during", mockexporter.Spike{Base: 10, Height: 80, At: time.Minute, Width: 10 * time.Second}, t0, 65 * time.Second, 90},
		{"spike after", mockexporter.Spike{Base: 10, Height: 80, At: time.Minute, Width: 10 * time.Second}, t0, 71 * time.Second, 10},
		{"spike repeats", mockexporter.Spike{Base: 10, Height: 80, At: time.Minute, Width: 10 * time.Second, Every: time.Minute}, t0, 3*time.Minute + 5*time.Second, 90},
		{"sum", mockexporter.Sum{mockexporter.Constant(5), mockexporter.Ramp{From: 0, To: 10, Duration: 10 * time.Second}}, t0, 5 * time.Second, 10},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if v, ok := tc.src.(mockexporter.Validator); ok {
				require.NoError(t, v.Validate())
			}
			got := tc.src.Value(tc.now, tc.elapsed)
			assert.InDelta(t, tc.want, got, 1e-9)
			lo, hi := tc.src.Bounds()
			assert.True(t, got >= lo-1e-9 && got <= hi+1e-9, "%v outside bounds [%v, %v]", got, lo, hi)
		})
	}
}

func TestSeededSourcesAreDeterministic(t *testing.T) {
	walk := mockexporter.RandomWalk{Seed: 7, Base: 50, Step: 2, Min: 0, Max: 100}
	noise := mockexporter.Noise{Seed: 7, Base: 50, Amplitude: 5}
	require.NoError(t, walk.Validate())
	require.NoError(t, noise.Validate())

	var prev float64
	moved := 0
	distinct := map[float64]bool{}
	for i := range 600 {
		now := t0.Add(time.Duration(i) * time.Second)
		w := walk.Value(now, 0)
		// Same instant, any order or number of calls, any elapsed: same value.
		assert.Equal(t, w, walk.Value(now, time.Hour))
		assert.Equal(t, w, mockexporter.RandomWalk{Seed: 7, Base: 50, Step: 2, Min: 0, Max: 100}.Value(now, 0))
		assert.True(t, w >= 0 && w <= 100, "walk %v out of [0,100]", w)
		if i > 0 && w != prev {
			moved++
		}
		prev = w

		n := noise.Value(now, 0)
		assert.Equal(t, n, noise.Value(now, 0))
		assert.True(t, n >= 45 && n <= 55, "noise %v out of [45,55]", n)
		distinct[n] = true
	}
	assert.Greater(t, moved, 500, "the walk should move")
	assert.Greater(t, len(distinct), 500, "noise should change every second")
	// Within one interval noise holds; another seed gives other values.
	assert.Equal(t, noise.Value(t0, 0), noise.Value(t0.Add(999*time.Millisecond), 0))
	other := mockexporter.Noise{Seed: 8, Base: 50, Amplitude: 5}
	assert.NotEqual(t, noise.Value(t0, 0), other.Value(t0, 0))
	// A walk moves gradually: consecutive seconds differ by a bounded amount.
	for i := range 100 {
		a := walk.Value(t0.Add(time.Duration(i)*time.Second), 0)
		b := walk.Value(t0.Add(time.Duration(i+1)*time.Second), 0)
		assert.Less(t, math.Abs(a-b), 40.0)
	}
}

func TestSourceValidation(t *testing.T) {
	cases := []struct {
		name string
		src  mockexporter.Validator
	}{
		{"constant NaN", mockexporter.Constant(math.NaN())},
		{"constant Inf", mockexporter.Constant(math.Inf(1))},
		{"steps empty", mockexporter.Steps{Every: time.Second}},
		{"steps no every", mockexporter.Steps{Values: []float64{1}}},
		{"steps NaN", mockexporter.Steps{Values: []float64{1, math.NaN()}, Every: time.Second}},
		{"ramp zero duration", mockexporter.Ramp{From: 1, To: 2}},
		{"ramp Inf", mockexporter.Ramp{From: math.Inf(-1), To: 2, Duration: time.Second}},
		{"sine no period", mockexporter.Sine{Base: 1, Amplitude: 1}},
		{"square duty 1", mockexporter.Square{Low: 0, High: 1, Period: time.Second, Duty: 1}},
		{"spike no width", mockexporter.Spike{Base: 0, Height: 1}},
		{"spike every < width", mockexporter.Spike{Height: 1, Width: time.Minute, Every: time.Second}},
		{"noise negative interval", mockexporter.Noise{Interval: -time.Second}},
		{"walk min == max", mockexporter.RandomWalk{Min: 1, Max: 1, Base: 1}},
		{"walk base outside", mockexporter.RandomWalk{Min: 0, Max: 1, Base: 5}},
		{"walk negative step", mockexporter.RandomWalk{Min: 0, Max: 1, Step: -1}},
		{"walk interval too long", mockexporter.RandomWalk{Min: 0, Max: 1, Interval: 1 << 53}},
		{"empty sum", mockexporter.Sum{}},
		{"sum with bad part", mockexporter.Sum{mockexporter.Ramp{}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.src.Validate()
			require.Error(t, err)
			var ve *mockexporter.ValidationError
			assert.ErrorAs(t, err, &ve)
		})
	}
}

func TestSourceSpecRoundTrip(t *testing.T) {
	specs := []string{
		`{"kind":"constant","value":3}`,
		`{"kind":"steps","values":[1,2,3],"every":"30s","repeat":true}`,
		`{"kind":"ramp","from":78,"to":95,"duration":"5m"}`,
		`{"kind":"sine","base":50,"amplitude":10,"period":"1m"}`,
		`{"kind":"square","low":0,"high":1,"period":"10s","duty":0.3}`,
		`{"kind":"spike","base":10,"height":80,"at":"1m","width":"10s","every":"2m"}`,
		`{"kind":"noise","seed":1,"base":50,"amplitude":5,"interval":"1s"}`,
		`{"kind":"randomwalk","seed":1,"base":50,"step":1,"min":0,"max":100}`,
		`{"kind":"sum","sources":[{"kind":"constant","value":1},{"kind":"noise","seed":2,"base":0,"amplitude":1}]}`,
	}
	for _, js := range specs {
		var spec mockexporter.SourceSpec
		require.NoError(t, json.Unmarshal([]byte(js), &spec), js)
		src, err := spec.Source()
		require.NoError(t, err, js)
		back := mockexporter.SpecOf(src)
		src2, err := back.Source()
		require.NoError(t, err, js)
		for i := range 50 {
			now := t0.Add(time.Duration(i) * 7 * time.Second)
			el := time.Duration(i) * 7 * time.Second
			assert.Equal(t, src.Value(now, el), src2.Value(now, el), js)
		}
	}
	_, err := mockexporter.SourceSpec{Kind: "warp"}.Source()
	assert.ErrorContains(t, err, "unknown source kind")
	_, err = mockexporter.SourceSpec{}.Source()
	assert.ErrorContains(t, err, "missing")
}

func TestDurationEncoding(t *testing.T) {
	var d struct {
		A mockexporter.Duration `json:"a" yaml:"a"`
		B mockexporter.Duration `json:"b" yaml:"b"`
	}
	require.NoError(t, json.Unmarshal([]byte(`{"a":"1m30s","b":2.5}`), &d))
	assert.Equal(t, 90*time.Second, time.Duration(d.A))
	assert.Equal(t, 2500*time.Millisecond, time.Duration(d.B))
	require.NoError(t, yaml.Unmarshal([]byte("a: 5m\nb: 3\n"), &d))
	assert.Equal(t, 5*time.Minute, time.Duration(d.A))
	assert.Equal(t, 3*time.Second, time.Duration(d.B))
	assert.Error(t, json.Unmarshal([]byte(`{"a":"soon"}`), &d))
	assert.Error(t, json.Unmarshal([]byte(`{"a":1e300}`), &d))
	b, err := json.Marshal(mockexporter.Duration(90 * time.Second))
	require.NoError(t, err)
	assert.Equal(t, `"1m30s"`, string(b))
}

func TestUnvalidatedSourcesDoNotPanic(t *testing.T) {
	// Sources built in Go skip validation until they are attached; reading
	// them must still not panic (an interval of 2^53 ns once made the walk's
	// coarsest time scale overflow to 0 and divide by it).
	now := time.Date(2026, 2, 10, 5, 35, 0, 0, time.UTC)
	for _, src := range []mockexporter.Source{
		mockexporter.RandomWalk{Seed: 1, Base: 5, Step: 1, Min: 0, Max: 10, Interval: 1 << 53},
		mockexporter.RandomWalk{Seed: 1, Base: 5, Step: 1, Min: 0, Max: 10, Interval: math.MaxInt64},
		mockexporter.Noise{Seed: 1, Interval: math.MaxInt64},
		mockexporter.Steps{Values: []float64{1, 2}, Every: 1, Repeat: true},
		mockexporter.Spike{Height: 1, Width: 1, Every: 1},
		mockexporter.Sine{Amplitude: 1, Period: math.MaxInt64},
		mockexporter.Square{High: 1, Period: math.MaxInt64},
		mockexporter.Ramp{},
		mockexporter.Steps{},
	} {
		assert.NotPanics(t, func() { src.Value(now, math.MaxInt64) }, "%#v", src)
		assert.NotPanics(t, func() { src.Value(now, math.MinInt64) }, "%#v", src)
	}
}
