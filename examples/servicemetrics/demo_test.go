package main

import (
	"encoding/json"
	"net/http"
	"testing"

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
		addr, stop := startRun(t, env)
		resp, err := http.Get("http://" + addr + "/api/metrics/incidents/by-service")
		require.NoError(t, err)
		var body struct{ Data []row }
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
		resp.Body.Close()
		got = body.Data
		require.NoError(t, stop())
	}
	assert.ElementsMatch(t, []row{
		{"prometheus", 5, 4, 0, 1},
		{"multi-test-server", 1, 1, 0, 0},
		{"db-monitor", 1, 0, 0, 1},
		{"node-exporter", 1, 0, 1, 0},
		{"rebuilt-test", 1, 0, 0, 1},
	}, got)
}
