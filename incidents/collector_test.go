package incidents_test

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promtestutil "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/incidents"
)

func TestCollector(t *testing.T) {
	clk := newClock(t0)
	s, pool := newStore(t, incidents.Options{Now: clk.Now})
	ctx := ctxT(t)
	a, err := s.Open(ctx, incidents.NewIncident{Title: "a", Source: "api"})
	require.NoError(t, err)
	_, err = s.Open(ctx, incidents.NewIncident{Title: "b", Source: "api"})
	require.NoError(t, err)
	clk.Advance(330 * time.Second)
	_, err = s.Acknowledge(ctx, a.ID)
	require.NoError(t, err)
	clk.Set(t0.Add(4500 * time.Second))
	_, err = s.Resolve(ctx, a.ID)
	require.NoError(t, err)

	c := incidents.NewCollector(s, incidents.CollectorOptions{})
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(c))
	expected := `
# HELP promflow_incidents Incidents by service and current status.
# TYPE promflow_incidents gauge
promflow_incidents{service="api",status="acknowledged"} 0
promflow_incidents{service="api",status="closed"} 0
promflow_incidents{service="api",status="open"} 1
promflow_incidents{service="api",status="resolved"} 1
# HELP promflow_incidents_mtta_seconds Mean time to acknowledge (first acknowledgement minus creation) over acknowledged incidents.
# TYPE promflow_incidents_mtta_seconds gauge
promflow_incidents_mtta_seconds{service="api"} 330
# HELP promflow_incidents_mttr_seconds Mean time to resolve (resolution minus creation) over resolved incidents.
# TYPE promflow_incidents_mttr_seconds gauge
promflow_incidents_mttr_seconds{service="api"} 4500
`
	require.NoError(t, promtestutil.GatherAndCompare(reg, strings.NewReader(expected),
		"promflow_incidents", "promflow_incidents_mtta_seconds", "promflow_incidents_mttr_seconds"))

	// Without a database the scrape fails loudly instead of going stale.
	pool.Close()
	_, err = reg.Gather()
	assert.Error(t, err)
}
