package incidents_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/incidents"
)

// TestLoadDemo: the seed report's table, exactly, however often it is
// loaded, with non-trivial MTTA and MTTR.
func TestLoadDemo(t *testing.T) {
	s, pool := newStore(t, incidents.Options{})
	ctx := ctxT(t)
	n, err := incidents.LoadDemo(ctx, pool)
	require.NoError(t, err)
	assert.Equal(t, incidents.DemoIncidents, n)
	n, err = incidents.LoadDemo(ctx, pool)
	require.NoError(t, err)
	assert.Zero(t, n, "a second load adds nothing")

	counts, err := s.ByService(ctx)
	require.NoError(t, err)
	// The seed report's "Incidents par Service" table (ties in name order).
	assert.Equal(t, []incidents.ServiceCounts{
		{Service: "prometheus", Total: 5, Open: 4, Acknowledged: 0, Resolved: 1},
		{Service: "db-monitor", Total: 1, Open: 0, Acknowledged: 0, Resolved: 1},
		{Service: "multi-test-server", Total: 1, Open: 1, Acknowledged: 0, Resolved: 0},
		{Service: "node-exporter", Total: 1, Open: 0, Acknowledged: 1, Resolved: 0},
		{Service: "rebuilt-test", Total: 1, Open: 0, Acknowledged: 0, Resolved: 1},
	}, counts)
	page, err := s.Details(ctx, incidents.DetailsQuery{})
	require.NoError(t, err)
	assert.Len(t, page.Items, 9)
	st, err := s.Stats(ctx, incidents.StatsQuery{})
	require.NoError(t, err)
	require.NotNil(t, st.Overall.MTTA)
	require.NotNil(t, st.Overall.MTTR)
	assert.Equal(t, int64(4), st.Overall.MTTA.Count)
	assert.Equal(t, int64(3), st.Overall.MTTR.Count)
	assert.Greater(t, st.Overall.MTTA.Mean, 60.0)
	assert.Greater(t, st.Overall.MTTR.Mean, 600.0)
	assert.Greater(t, st.Overall.MTTR.P90, st.Overall.MTTR.P50)
	requireRollupsExact(t, pool)
}

// TestLoadDemoOnOriginalSchema: the demo also loads into an adopted table.
func TestLoadDemoOnOriginalSchema(t *testing.T) {
	pool := originalDB(t)
	ctx := ctxT(t)
	require.NoError(t, incidents.Migrate(ctx, pool))
	n, err := incidents.LoadDemo(ctx, pool)
	require.NoError(t, err)
	assert.Equal(t, incidents.DemoIncidents, n)
	requireRollupsExact(t, pool)
}
