package promquery_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/prometheus/common/config"
	"github.com/prometheus/common/model"

	"github.com/promflow/promflow/promquery"
)

// New needs only the server's address; the zero Options works. (This
// example needs a Prometheus at localhost:9090, so it is compiled, not run.)
func ExampleNew() {
	c, err := promquery.New("http://localhost:9090", promquery.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, meta, err := c.Vector(ctx, `up`, time.Time{})
	if err != nil {
		log.Fatal(err)
	}
	for _, w := range meta.Warnings {
		log.Printf("warning: %s", w)
	}
	for _, s := range v {
		fmt.Println(s.Metric[model.InstanceLabel], s.Value)
	}
}

// Auth, TLS, retries and extra headers for a Prometheus behind a gateway.
// (New reads the CA file, which exists only on such a setup, so this
// example is compiled, not run.)
func ExampleNew_gateway() {
	c, err := promquery.New("https://prometheus.example.com/prom", promquery.Options{
		HTTPConfig: config.HTTPClientConfig{
			BearerToken: "token",
			TLSConfig:   config.TLSConfig{CAFile: "/etc/ssl/prom-ca.pem"},
		},
		Headers:          http.Header{"X-Scope-OrgID": {"team-a"}},
		Retry:            promquery.RetryPolicy{MaxAttempts: 4, MaxBackoff: 5 * time.Second},
		MaxResponseBytes: 64 << 20,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
}

// Values from users go into matchers, never into the query text.
func ExampleSelect() {
	service := `checkout"} or vector(1) #` // hostile input
	sel := promquery.Select("http_requests_total",
		promquery.Eq("service", service),
		promquery.Re("code", "5.."),
	)
	fmt.Println(sel)
	fmt.Println("sum(rate(" + sel.Range(5*time.Minute) + "))")
	fmt.Println(promquery.Select("http.server.duration", promquery.Neq("le", "+Inf")))
	// Output:
	// http_requests_total{service="checkout\"} or vector(1) #",code=~"5.."}
	// sum(rate(http_requests_total{service="checkout\"} or vector(1) #",code=~"5.."}[5m]))
	// {__name__="http.server.duration",le!="+Inf"}
}

// LiteralRegex and AnyOf match user-supplied values exactly inside a regular
// expression matcher.
func ExampleLiteralRegex() {
	fmt.Println(promquery.Select("up", promquery.Re("instance", promquery.LiteralRegex("10.0.0.1:9100"))))
	fmt.Println(promquery.Select("up", promquery.Re("job", promquery.AnyOf("api", "web (eu)"))))
	// Output:
	// up{instance=~"10\\.0\\.0\\.1:9100"}
	// up{job=~"api|web \\(eu\\)"}
}

// StreamMatrix hands over one series at a time, so a large range answer is
// never held in memory at once. (This example needs a Prometheus at
// localhost:9090, so it is compiled, not run.)
func ExampleClient_StreamMatrix() {
	c, err := promquery.New("http://localhost:9090", promquery.Options{})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	end := time.Now()
	var points int
	meta, err := c.StreamMatrix(ctx, `rate(http_requests_total[5m])`,
		promquery.Range{Start: end.Add(-24 * time.Hour), End: end, Step: time.Minute},
		func(s *model.SampleStream) error {
			points += len(s.Values)
			return nil
		})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(points, "points;", len(meta.Warnings), "warnings")
}

// Query returns whatever type the expression has, strings included. (This
// example needs a Prometheus at localhost:9090, so it is compiled, not run.)
func ExampleClient_Query() {
	c, err := promquery.New("http://localhost:9090", promquery.Options{})
	if err != nil {
		log.Fatal(err)
	}
	r, _, err := c.Query(context.Background(), `time()`, time.Time{})
	if err != nil {
		log.Fatal(err)
	}
	switch r.Type {
	case model.ValScalar:
		fmt.Println("scalar", r.Scalar.Value)
	case model.ValVector:
		fmt.Println(len(r.Vector), "samples")
	}
}

// Vector answers an instant query with a model.Vector and the answer's
// warnings. (A stand-in server plays Prometheus here so that the example
// runs; point New at a real one.)
func ExampleClient_Vector() {
	prom := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"status":"success","data":{"resultType":"vector","result":[`+
			`{"metric":{"__name__":"up","instance":"app-1:8080","job":"app"},"value":[1700000000.5,"1"]}]},`+
			`"warnings":["some series were dropped"]}`)
	}))
	defer prom.Close()

	c, err := promquery.New(prom.URL, promquery.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	v, meta, err := c.Vector(context.Background(), `up{job="app"}`, time.Time{})
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range v {
		fmt.Println(s.Metric[model.InstanceLabel], s.Value, s.Timestamp.Time().UTC().Format(time.RFC3339Nano))
	}
	fmt.Println("warnings:", meta.Warnings)
	// Output:
	// app-1:8080 1 2023-11-14T22:13:20.5Z
	// warnings: [some series were dropped]
}

// Every non-2xx answer is an *APIError carrying the HTTP status and
// Prometheus' errorType and message, or the body when it is not Prometheus
// JSON (an HTML page from a proxy, say). (Stand-in servers play Prometheus
// and a broken proxy here so that the example runs.)
func ExampleAPIError() {
	prom := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"status":"error","errorType":"bad_data","error":"1:5: parse error: unclosed left parenthesis"}`)
	}))
	defer prom.Close()
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = io.WriteString(w, "<html><h1>502 Bad Gateway</h1></html>")
	}))
	defer proxy.Close()

	for _, url := range []string{prom.URL, proxy.URL} {
		c, err := promquery.New(url, promquery.Options{})
		if err != nil {
			log.Fatal(err)
		}
		_, _, err = c.Vector(context.Background(), `sum(`, time.Time{})
		var apiErr *promquery.APIError
		switch {
		case errors.As(err, &apiErr) && apiErr.Type == promquery.ErrorBadData:
			fmt.Println("bad query:", apiErr.StatusCode, apiErr.Message)
		case errors.As(err, &apiErr):
			fmt.Printf("server failed: %d %s %q\n", apiErr.StatusCode, apiErr.Message, apiErr.Body)
		case errors.Is(err, context.DeadlineExceeded):
			fmt.Println("gave up")
		case err != nil:
			fmt.Println("failed:", err)
		}
		_ = c.Close()
	}
	// Output:
	// bad query: 400 1:5: parse error: unclosed left parenthesis
	// server failed: 502 Bad Gateway "<html><h1>502 Bad Gateway</h1></html>"
}

// Tests and pipelines wait for a scrape, then for data, bounded by the
// context. (This example needs a Prometheus scraping a mock-metrics target,
// so it is compiled, not run; promflowtest starts both for a test.)
func ExampleClient_WaitTargetUp() {
	c, err := promquery.New("http://localhost:9090", promquery.Options{})
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.WaitTargetUp(ctx, "mock-metrics", ""); err != nil {
		log.Fatal(err)
	}
	v, err := c.WaitForValue(ctx, `mock_high_memory_usage_bytes`, func(v model.Vector) bool {
		return len(v) > 0 && v[0].Value > 0
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(v)
}
