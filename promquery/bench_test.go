package promquery

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// benchStart is the first timestamp of the generated answers.
var benchStart = time.Unix(1700000000, 123e6)

// genMatrix renders a query_range answer with series × points samples in
// the exact format Prometheus writes.
func genMatrix(series, points int) []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, 0, series*points*30+series*150)
	b = append(b, `{"status":"success","data":{"resultType":"matrix","result":[`...)
	for s := range series {
		if s > 0 {
			b = append(b, ',')
		}
		b = fmt.Appendf(b, `{"metric":{"__name__":"node_cpu_seconds_total","cpu":"%d","instance":"host-%d.example.com:9100","job":"node","mode":"user"},"values":[`, s%8, s/8)
		for p := range points {
			if p > 0 {
				b = append(b, ',')
			}
			ms := benchStart.UnixMilli() + int64(p)*15000
			b = append(b, '[')
			b = strconv.AppendInt(b, ms/1000, 10)
			b = append(b, '.')
			b = fmt.Appendf(b, "%03d", ms%1000)
			b = append(b, `,"`...)
			b = strconv.AppendFloat(b, float64(rng.IntN(1e6))/100, 'f', -1, 64)
			b = append(b, `"]`...)
		}
		b = append(b, `]}`...)
	}
	return append(b, `]}}`...)
}

// genVector renders a query answer with n samples.
func genVector(n int) []byte {
	rng := rand.New(rand.NewPCG(3, 4))
	b := []byte(`{"status":"success","data":{"resultType":"vector","result":[`)
	for s := range n {
		if s > 0 {
			b = append(b, ',')
		}
		b = fmt.Appendf(b, `{"metric":{"__name__":"http_requests_total","code":"%d","handler":"/api/v1/item/%d","instance":"10.0.%d.%d:8080","job":"api","method":"GET"},"value":[1700000000.123,"`, 200+s%5, s%50, s/256%256, s%256)
		b = strconv.AppendFloat(b, rng.Float64()*1e6, 'f', -1, 64)
		b = append(b, `"]}`...)
	}
	return append(b, `]}}`...)
}

func serveBody(b *testing.B, body []byte) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write(body)
	}))
	b.Cleanup(srv.Close)
	return srv
}

func benchClients(b *testing.B, url string) (*Client, v1.API) {
	c, err := New(url, Options{})
	if err != nil {
		b.Fatal(err)
	}
	ac, err := api.NewClient(api.Config{Address: url})
	if err != nil {
		b.Fatal(err)
	}
	return c, v1.NewAPI(ac)
}

// BenchmarkDecodeMatrix decodes the same 1,000 series × 1,000 points
// query_range answer (about 29 MB) through promquery and through
// client_golang's api/prometheus/v1, both from the same httptest server.
// json_valid is the floor: merely scanning the body with encoding/json.Valid.
func BenchmarkDecodeMatrix(b *testing.B) {
	body := genMatrix(1000, 1000)
	srv := serveBody(b, body)
	c, capi := benchClients(b, srv.URL)
	ctx := context.Background()
	r := Range{Start: benchStart, End: benchStart.Add(999 * 15 * time.Second), Step: 15 * time.Second}
	check := func(b *testing.B, m model.Matrix) {
		if len(m) != 1000 || len(m[999].Values) != 1000 {
			b.Fatalf("decoded %d series", len(m))
		}
	}
	// Fairness: outside the timing, both sides must decode the whole
	// answer to the same model.Matrix, every label and sample included.
	mine, _, err := c.Matrix(ctx, "node_cpu_seconds_total", r)
	if err != nil {
		b.Fatal(err)
	}
	theirs, _, _, err := capi.QueryRange(ctx, "node_cpu_seconds_total", v1.Range{Start: r.Start, End: r.End, Step: r.Step})
	if err != nil {
		b.Fatal(err)
	}
	if !reflect.DeepEqual(mine, theirs) {
		b.Fatal("promquery and client_golang decode the answer differently")
	}
	mine, theirs = nil, nil
	b.Run("promflow", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			m, _, err := c.Matrix(ctx, "node_cpu_seconds_total", r)
			if err != nil {
				b.Fatal(err)
			}
			check(b, m)
		}
	})
	b.Run("client_golang", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			v, _, _, err := capi.QueryRange(ctx, "node_cpu_seconds_total", v1.Range{Start: r.Start, End: r.End, Step: r.Step})
			if err != nil {
				b.Fatal(err)
			}
			check(b, v.(model.Matrix))
		}
	})
	b.Run("json_valid", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			if !json.Valid(body) {
				b.Fatal("invalid")
			}
		}
	})
}

// BenchmarkDecodeVector decodes the same 10,000-sample query answer through
// promquery and through client_golang.
func BenchmarkDecodeVector(b *testing.B) {
	body := genVector(10000)
	srv := serveBody(b, body)
	c, capi := benchClients(b, srv.URL)
	ctx := context.Background()
	mine, _, err := c.Vector(ctx, "http_requests_total", time.Time{})
	if err != nil {
		b.Fatal(err)
	}
	theirs, _, _, err := capi.Query(ctx, "http_requests_total", time.Now())
	if err != nil {
		b.Fatal(err)
	}
	if !reflect.DeepEqual(mine, theirs) {
		b.Fatal("promquery and client_golang decode the answer differently")
	}
	mine, theirs = nil, nil
	b.Run("promflow", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			v, _, err := c.Vector(ctx, "http_requests_total", time.Time{})
			if err != nil || len(v) != 10000 {
				b.Fatal(err, len(v))
			}
		}
	})
	b.Run("client_golang", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			v, _, _, err := capi.Query(ctx, "http_requests_total", time.Now())
			if err != nil || len(v.(model.Vector)) != 10000 {
				b.Fatal(err)
			}
		}
	})
}
