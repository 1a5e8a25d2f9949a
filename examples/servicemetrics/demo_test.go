package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/promflowtest"
)

// TestDemoGivesTheSeedTable: -demo (run twice on one database) serves
// exactly the seed report's incidents by service.
func TestDemoGivesTheSeedTable(t *testing.T) {
	prom := promflowtest.Prometheus(t, promflowtest.PrometheusOptions{})
	env := map[string]string{"PROMETHEUS_URL": prom.URL, "DATABASE_URL": promflowtest.DatabaseURL(t), "DEMO": "true"}
	type row struct {
		Service  string `json:"service"`
		Total    int    `json:"total_incidents"`
		Open     int    `json:"open_count"`
		Ack      int    `json:"ack_count"`
		Resolved int    `json:"resolved_count"`
	}
	var got []row
	for range 2 { // idempotent: the second start adds nothing
		ctx, cancel := context.WithCancel(context.Background())
		ready := make(chan string, 1)
		done := make(chan error, 1)
		go func() {
			done <- run(ctx, []string{"-addr", "127.0.0.1:0"}, func(k string) string { return env[k] }, slog.New(slog.NewTextHandler(io.Discard, nil)), ready)
		}()
		var addr string
		select {
		case addr = <-ready:
		case err := <-done:
			t.Fatalf("run returned early: %v", err)
		case <-time.After(60 * time.Second):
			t.Fatal("server did not start")
		}
		resp, err := http.Get("http://" + addr + "/api/metrics/incidents/by-service")
		require.NoError(t, err)
		var body struct{ Data []row }
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
		resp.Body.Close()
		got = body.Data
		cancel()
		require.NoError(t, <-done)
	}
	assert.ElementsMatch(t, []row{
		{"prometheus", 5, 4, 0, 1},
		{"multi-test-server", 1, 1, 0, 0},
		{"db-monitor", 1, 0, 0, 1},
		{"node-exporter", 1, 0, 1, 0},
		{"rebuilt-test", 1, 0, 0, 1},
	}, got)
}
