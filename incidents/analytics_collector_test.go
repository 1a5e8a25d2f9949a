package incidents_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/incidents"
)

func TestAnalyticsCollector(t *testing.T) {
	now := time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)
	_, pool := newStore(t, incidents.Options{})
	s := incidents.NewStore(pool, incidents.Options{Now: func() time.Time { return now }, Logger: quietLogger})
	loadAnalyticsData(t, s, pool)
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(incidents.NewAnalyticsCollector(s, incidents.AnalyticsCollectorOptions{MaxServices: 2})))
	mfs, err := reg.Gather()
	require.NoError(t, err)
	series := map[string]map[[2]string]float64{}
	for _, mf := range mfs {
		m := map[[2]string]float64{}
		for _, metric := range mf.GetMetric() {
			var k [2]string
			for _, l := range metric.GetLabel() {
				switch l.GetName() {
				case "service":
					k[0] = l.GetValue()
				case "window":
					k[1] = l.GetValue()
				}
			}
			m[k] = metric.GetGauge().GetValue()
		}
		series[mf.GetName()] = m
	}
	ratio := series["promflow_incidents_ack_within_ratio"]
	// Bounded: 2 services, _other and all, per window.
	assert.Len(t, ratio, 3*4)
	for _, w := range []string{"1d", "7d", "30d"} {
		_, ok := ratio[[2]string{"", w}]
		assert.True(t, ok, "overall series of window %s", w)
		_, ok = ratio[[2]string{incidents.OtherService, w}]
		assert.True(t, ok, "other series of window %s", w)
	}
	var opened, within, resWithin float64
	require.NoError(t, pool.QueryRow(ctxT(t), `SELECT count(*), count(*) FILTER (WHERE acknowledged_at - created_at <= interval '5 minutes'),
		count(*) FILTER (WHERE status IN ('resolved', 'closed') AND resolved_at - created_at <= interval '1 hour')
		FROM incidents WHERE created_at >= $1 AND created_at < $2`, now.Add(-30*24*time.Hour), now).Scan(&opened, &within, &resWithin))
	require.Positive(t, opened)
	assert.Equal(t, opened, series["promflow_incidents_window_opened"][[2]string{"", "30d"}])
	assert.InDelta(t, within/opened, ratio[[2]string{"", "30d"}], 1e-12)
	assert.InDelta(t, resWithin/opened, series["promflow_incidents_resolve_within_ratio"][[2]string{"", "30d"}], 1e-12)
	assert.Equal(t, 300.0, series["promflow_incidents_ack_target_seconds"][[2]string{}])
	// The parts add up to the whole.
	var sum float64
	for k, v := range series["promflow_incidents_window_opened"] {
		if k[1] == "30d" && k[0] != "" {
			sum += v
		}
	}
	assert.Equal(t, opened, sum)
}
