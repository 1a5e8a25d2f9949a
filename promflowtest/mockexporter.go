package promflowtest

import (
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/promflow/promflow/mockexporter"
)

// MockExporter serves a new mockexporter.Registry (built from opts; the zero
// value gives the seed catalogue and the real clock, and logs are discarded
// unless opts.Logger is set) on a loopback httptest server that is closed at
// cleanup. Scrape it from a Prometheus started with [Prometheus] using
// strings.TrimPrefix(srv.URL, "http://") as the target.
func MockExporter(t testing.TB, opts mockexporter.Options) (*mockexporter.Registry, *httptest.Server) {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	reg := mockexporter.New(opts)
	srv := httptest.NewServer(reg.Handler())
	t.Cleanup(srv.Close)
	return reg, srv
}
