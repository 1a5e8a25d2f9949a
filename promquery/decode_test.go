package promquery

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// decodeAll decodes body three ways (whole, one byte per read, random
// chunks) and requires the same outcome, which exercises every token
// crossing a buffer boundary.
func decodeAll(t *testing.T, body string) (*queryResult, error) {
	t.Helper()
	res, err := decodeQuery(strings.NewReader(body), nil)
	res1, err1 := decodeQuery(iotest.OneByteReader(strings.NewReader(body)), nil)
	res2, err2 := decodeQuery(&chunkReader{r: strings.NewReader(body), rng: rand.New(rand.NewPCG(7, uint64(len(body))))}, nil)
	require.Equal(t, err == nil, err1 == nil, "one-byte reads: %v vs %v", err, err1)
	require.Equal(t, err == nil, err2 == nil, "chunked reads: %v vs %v", err, err2)
	if err == nil {
		requireSame(t, res, res1)
		requireSame(t, res, res2)
	}
	return res, err
}

// requireSame compares results through their JSON form, where NaN equals
// NaN.
func requireSame(t *testing.T, a, b *queryResult) {
	t.Helper()
	js := func(r *queryResult) string {
		out, err := json.Marshal([]any{r.typ, r.vector, r.matrix, r.scalar, r.str, r.meta})
		require.NoError(t, err)
		return string(out)
	}
	require.Equal(t, js(a), js(b))
}

type chunkReader struct {
	r   io.Reader
	rng *rand.Rand
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if n := 1 + c.rng.IntN(97); len(p) > n {
		p = p[:n]
	}
	return c.r.Read(p)
}

func TestDecodeShapes(t *testing.T) {
	t.Run("vector", func(t *testing.T) {
		res, err := decodeAll(t, ` { "status" : "success" , "data" : { "resultType" : "vector" , "result" : [
			{"metric":{"__name__":"up","job":"a\"b\\c\nd\u00e9\ud83d\ude00"},"value":[1435781451.781,"1"]},
			{"value":[1435781451,"NaN"],"metric":{}},
			{"metric":{"x":"y"},"value":[1.5,"+Inf"],"extra":{"nested":[1,2,{"a":null}]}},
			{"metric":{},"value":[-1.25,"-Inf"]}
		] } , "warnings":["w"], "infos":[] } `)
		require.NoError(t, err)
		assert.Equal(t, model.ValVector, res.typ)
		require.Len(t, res.vector, 4)
		assert.Equal(t, model.LabelValue("a\"b\\c\ndé😀"), res.vector[0].Metric["job"])
		assert.Equal(t, model.Time(1435781451781), res.vector[0].Timestamp)
		assert.Equal(t, model.SampleValue(1), res.vector[0].Value)
		assert.True(t, math.IsNaN(float64(res.vector[1].Value)))
		assert.Equal(t, model.Time(1435781451000), res.vector[1].Timestamp)
		assert.Equal(t, model.Time(1500), res.vector[2].Timestamp)
		assert.True(t, math.IsInf(float64(res.vector[2].Value), 1))
		assert.Equal(t, model.Time(-1250), res.vector[3].Timestamp)
		assert.True(t, math.IsInf(float64(res.vector[3].Value), -1))
		assert.Equal(t, []string{"w"}, res.meta.Warnings)
		assert.Equal(t, []string{}, res.meta.Infos)
	})
	t.Run("result before resultType", func(t *testing.T) {
		res, err := decodeAll(t, `{"data":{"result":[{"metric":{"a":"b"},"values":[[1,"1"],[2,"2"]]}],"resultType":"matrix"},"status":"success"}`)
		require.NoError(t, err)
		assert.Equal(t, model.Matrix{{Metric: model.Metric{"a": "b"}, Values: []model.SamplePair{{Timestamp: 1000, Value: 1}, {Timestamp: 2000, Value: 2}}}}, res.matrix)
		res, err = decodeAll(t, `{"data":{"result":[1700000000.001,"0.5"],"resultType":"scalar"},"status":"success"}`)
		require.NoError(t, err)
		assert.Equal(t, model.Scalar{Value: 0.5, Timestamp: 1700000000001}, res.scalar)
		res, err = decodeAll(t, `{"status":"success","data":{"result":[],"resultType":"vector"}}`)
		require.NoError(t, err)
		assert.Equal(t, model.Vector{}, res.vector)
	})
	t.Run("string", func(t *testing.T) {
		res, err := decodeAll(t, `{"status":"success","data":{"resultType":"string","result":[1700000000,"he said \"hi\"\t"]}}`)
		require.NoError(t, err)
		assert.Equal(t, model.String{Value: "he said \"hi\"\t", Timestamp: 1700000000000}, res.str)
	})
	t.Run("timestamps", func(t *testing.T) {
		for in, want := range map[string]model.Time{
			"0": 0, "1": 1000, "1.5": 1500, "1.05": 1050, "1.123456": 1123, "1e3": 1000000,
			"1.5E1": 15000, "-0.5": -500, "1700000000.123": 1700000000123, "0.001": 1,
		} {
			res, err := decodeAll(t, `{"status":"success","data":{"resultType":"scalar","result":[`+in+`,"1"]}}`)
			require.NoError(t, err, in)
			assert.Equal(t, want, res.scalar.Timestamp, in)
		}
	})
	t.Run("histograms", func(t *testing.T) {
		h := `{"count":"5","sum":"9.01","buckets":[[0,"0.0095","0.0105","1"],[0,"1.4","1.6","2"]]}`
		res, err := decodeAll(t, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"b"},"histogram":[1700000000.5,`+h+`]}]}}`)
		require.NoError(t, err)
		require.Len(t, res.vector, 1)
		s := res.vector[0]
		require.NotNil(t, s.Histogram)
		assert.Equal(t, model.Time(1700000000500), s.Timestamp)
		assert.Equal(t, model.FloatString(5), s.Histogram.Count)
		assert.Equal(t, model.FloatString(9.01), s.Histogram.Sum)
		require.Len(t, s.Histogram.Buckets, 2)
		assert.Equal(t, model.FloatString(1.6), s.Histogram.Buckets[1].Upper)

		res, err = decodeAll(t, `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"histograms":[[1,`+h+`],[2,`+h+`]]}]}}`)
		require.NoError(t, err)
		require.Len(t, res.matrix, 1)
		require.Len(t, res.matrix[0].Histograms, 2)
		assert.Equal(t, model.Time(2000), res.matrix[0].Histograms[1].Timestamp)
		assert.Empty(t, res.matrix[0].Values)
	})
	t.Run("stats", func(t *testing.T) {
		res, err := decodeAll(t, `{"status":"success","data":{"resultType":"vector","result":[],"stats":{"timings":{"evalTotalTime":0.01},"samples":{"totalQueryableSamples":3}}}}`)
		require.NoError(t, err)
		assert.JSONEq(t, `{"timings":{"evalTotalTime":0.01},"samples":{"totalQueryableSamples":3}}`, string(res.meta.Stats))
	})
	t.Run("big token", func(t *testing.T) {
		long := strings.Repeat("ab\\\"", 70000) // larger than the read buffer
		res, err := decodeAll(t, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"v":"`+long+`"},"value":[1,"1"]}]}}`)
		require.NoError(t, err)
		assert.Equal(t, strings.Repeat(`ab\"`[:2]+`"`, 70000), string(res.vector[0].Metric["v"]))
	})
	t.Run("invalid UTF-8 becomes U+FFFD", func(t *testing.T) {
		body := "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[{\"metric\":{\"v\":\"a\xffb\"},\"value\":[1,\"1\"]}]}}"
		res, err := decodeAll(t, body)
		require.NoError(t, err)
		var ref struct {
			Data struct {
				Result model.Vector `json:"result"`
			} `json:"data"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &ref))
		assert.Equal(t, ref.Data.Result[0].Metric["v"], res.vector[0].Metric["v"])
	})
}

func TestDecodeRejects(t *testing.T) {
	ok := func(result string) string {
		return `{"status":"success","data":{"resultType":"vector","result":` + result + `}}`
	}
	for name, body := range map[string]string{
		"empty":                ``,
		"not an object":        `[]`,
		"truncated":            `{"status":"success","data":{"resultType":"vector","result":[`,
		"truncated string":     `{"status":"succ`,
		"no data":              `{"status":"success"}`,
		"no status":            `{"data":{"resultType":"vector","result":[]}}`,
		"bad status":           `{"status":"weird","data":{"resultType":"vector","result":[]}}`,
		"no resultType":        `{"status":"success","data":{"result":[]}}`,
		"unknown resultType":   `{"status":"success","data":{"resultType":"tensor","result":[]}}`,
		"trailing data":        ok(`[]`) + `{}`,
		"trailing comma":       ok(`[{"metric":{},"value":[1,"1"]},]`),
		"missing comma":        ok(`[{"metric":{} "value":[1,"1"]}]`),
		"values in vector":     ok(`[{"metric":{},"values":[[1,"1"]]}]`),
		"value and values":     `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"value":[1,"1"],"values":[]}]}}`,
		"sample without value": ok(`[{"metric":{}}]`),
		"bad value":            ok(`[{"metric":{},"value":[1,"one"]}]`),
		"number value":         ok(`[{"metric":{},"value":[1,1]}]`),
		"string timestamp":     ok(`[{"metric":{},"value":["1","1"]}]`),
		"leading zero":         ok(`[{"metric":{},"value":[01,"1"]}]`),
		"bare dot":             ok(`[{"metric":{},"value":[1.,"1"]}]`),
		"plus number":          ok(`[{"metric":{},"value":[+1,"1"]}]`),
		"extra pair member":    ok(`[{"metric":{},"value":[1,"1",2]}]`),
		"label not string":     ok(`[{"metric":{"a":1},"value":[1,"1"]}]`),
		"control char":         ok("[{\"metric\":{\"a\":\"x\ty\"},\"value\":[1,\"1\"]}]"),
		"bad escape":           ok(`[{"metric":{"a":"\x41"},"value":[1,"1"]}]`),
		"short unicode":        ok(`[{"metric":{"a":"\u00"},"value":[1,"1"]}]`),
		"bad literal":          ok(`[{"metric":{},"value":[1,"1"],"x":nul}]`),
		"deep nesting":         ok(`[{"metric":{},"value":[1,"1"],"x":` + strings.Repeat("[", 1000) + strings.Repeat("]", 1000) + `}]`),
		"scalar in matrix":     `{"status":"success","data":{"resultType":"matrix","result":[1,"1"]}}`,
		"vector as scalar":     `{"status":"success","data":{"resultType":"scalar","result":[]}}`,
		"bad histogram":        ok(`[{"metric":{},"histogram":[1,{"count":"x"}]}]`),
		"huge timestamp":       ok(`[{"metric":{},"value":[1e300,"1"]}]`),
		"nul byte":             ok("[]") + "\x00",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := decodeAll(t, body)
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrBadResponse)
		})
	}
}

func TestDecodeReadError(t *testing.T) {
	boom := errors.New("boom")
	_, err := decodeQuery(io.MultiReader(strings.NewReader(`{"status":"success","data":{"resultType":"vector","result":[`), iotest.ErrReader(boom)), nil)
	require.ErrorIs(t, err, boom)

	_, err = decodeQuery(&capReader{r: bytes.NewReader(genVector(100)), left: 1000}, nil)
	require.ErrorIs(t, err, ErrResponseTooLarge)
	body := genVector(100)
	_, err = decodeQuery(&capReader{r: bytes.NewReader(body), left: int64(len(body))}, nil)
	require.NoError(t, err, "a body of exactly the cap passes")
}

// TestDecodeMatchesModel compares the decoder with client_golang's model
// unmarshalling (encoding/json) on realistic answers.
func TestDecodeMatchesModel(t *testing.T) {
	for _, body := range [][]byte{genMatrix(30, 40), genVector(500)} {
		var ref struct {
			Data struct {
				Type   model.ValueType `json:"resultType"`
				Result json.RawMessage `json:"result"`
			} `json:"data"`
		}
		require.NoError(t, json.Unmarshal(body, &ref))
		res, err := decodeAll(t, string(body))
		require.NoError(t, err)
		switch ref.Data.Type {
		case model.ValMatrix:
			var m model.Matrix
			require.NoError(t, json.Unmarshal(ref.Data.Result, &m))
			assert.Equal(t, m, res.matrix)
		case model.ValVector:
			var v model.Vector
			require.NoError(t, json.Unmarshal(ref.Data.Result, &v))
			assert.Equal(t, v, res.vector)
		default:
			t.Fatalf("type %v", ref.Data.Type)
		}
	}
}

func TestStreamHandsOverEachSeries(t *testing.T) {
	body := genMatrix(50, 20)
	var got model.Matrix
	res, err := decodeQuery(bytes.NewReader(body), func(ss *model.SampleStream) error {
		got = append(got, ss)
		return nil
	})
	require.NoError(t, err)
	assert.Nil(t, res.matrix, "streamed series are not collected")
	full, err := decodeQuery(bytes.NewReader(body), nil)
	require.NoError(t, err)
	assert.Equal(t, full.matrix, got)
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	assert.Equal(t, 3*time.Second, parseRetryAfter("3", now))
	assert.Equal(t, time.Duration(0), parseRetryAfter("-3", now))
	assert.Equal(t, time.Duration(0), parseRetryAfter("soon", now))
	assert.Equal(t, time.Duration(1<<20)*time.Second, parseRetryAfter("99999999999999", now))
	assert.Equal(t, 90*time.Second, parseRetryAfter(now.Add(90*time.Second).Format(http.TimeFormat), now))
	assert.Equal(t, time.Duration(0), parseRetryAfter(now.Add(-time.Hour).Format(http.TimeFormat), now))
}

func TestFormatTime(t *testing.T) {
	assert.Equal(t, "1700000000.123", formatTime(time.UnixMilli(1700000000123)))
	assert.Equal(t, "0.005", formatTime(time.UnixMilli(5)))
	assert.Equal(t, "-1.500", formatTime(time.UnixMilli(-1500)))
	assert.Equal(t, "0.5", formatDuration(500*time.Millisecond))
	assert.Equal(t, "60", formatDuration(time.Minute))
}

func TestParseTimestampStrict(t *testing.T) {
	for _, bad := range []string{"", "-", "01", "1.", ".5", "1e", "1e+", "--1", "1.5.5", "0x10", "1_000", "+1", " 1", "１", "12345678901234567"} {
		_, ok := parseTimestamp([]byte(bad))
		assert.False(t, ok, "%q", bad)
	}
	for in, want := range map[string]int64{"0": 0, "-0": 0, "0.5": 500, "10": 10000, "1.0001": 1000, "1000000000000000": 1000000000000000000, "1E2": 100000, "-1e-3": -1} {
		got, ok := parseTimestamp([]byte(in))
		assert.True(t, ok, in)
		assert.Equal(t, want, got, in)
	}
}

// splitReader returns the first n bytes in one read and the rest in the
// next, so that every token can be made to straddle a refill.
type splitReader struct {
	b []byte
	n int
}

func (r *splitReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	k := len(r.b)
	if r.n > 0 {
		k, r.n = min(r.n, k), 0
	}
	k = copy(p, r.b[:k])
	r.b = r.b[k:]
	return k, nil
}

func TestDecodeEverySplit(t *testing.T) {
	h := `{"count":"5","sum":"9.01","buckets":[[0,"0.0095","0.0105","1"]]}`
	body := `{"status":"success","warnings":["w\u00e9\ud83d\ude00"],"data":{"resultType":"matrix","stats":{"a":[1,2.5e3,true,null]},"result":[` +
		`{"metric":{"__name__":"m","x":"a\"b\\c\nd\u00e9\ud83d\ude00\ud800z","y":"` + "\xff" + `"},"values":[[1700000000.123,"1.5"], [1700000001,"NaN"],[1.5e3,"-Inf"]]},` +
		` {"values":[[2,"2"]],"metric":{}},{"metric":{"h":"1"},"histograms":[[3,` + h + `]]}]}}`
	want, err := decodeQuery(strings.NewReader(body), nil)
	require.NoError(t, err)
	require.Len(t, want.matrix, 3)
	assert.Equal(t, model.LabelValue("a\"b\\c\ndé😀\uFFFDz"), want.matrix[0].Metric["x"])
	for n := 1; n < len(body); n++ {
		got, err := decodeQuery(&splitReader{b: []byte(body), n: n}, nil)
		require.NoError(t, err, "split at %d", n)
		requireSame(t, want, got)
	}
}
