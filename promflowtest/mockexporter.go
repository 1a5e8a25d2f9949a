package promflowtest

import (
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/promflow/promflow/mockexporter"
)

// MockExporterServer is a [mockexporter.Registry] served over HTTP by
// [MockExporter]. The Registry's methods (SetValue, Set, StartScenario, ...)
// are promoted, so a test drives values with m.SetValue(...).
type MockExporterServer struct {
	*mockexporter.Registry
	// URL is the base URL, e.g. http://127.0.0.1:41234: GET URL+"/metrics",
	// POST URL+"/simulate/cpu-usage/95".
	URL string
	// Target is the host:port to scrape, for [ScrapeConfig].Targets.
	Target string
	// Server is the underlying test server.
	Server *httptest.Server
}

// MockExporter serves a new mockexporter.Registry (built from opts; the zero
// value gives the seed catalogue and the real clock, and logs are discarded
// unless opts.Logger is set) on a loopback httptest server that is closed at
// cleanup. Scrape it from a Prometheus started with [Prometheus] using
// Target (set HonorLabels to keep the seed's instance labels).
func MockExporter(t testing.TB, opts mockexporter.Options) *MockExporterServer {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	reg := mockexporter.New(opts)
	srv := httptest.NewServer(reg.Handler())
	t.Cleanup(srv.Close)
	return &MockExporterServer{Registry: reg, URL: srv.URL, Target: strings.TrimPrefix(srv.URL, "http://"), Server: srv}
}
