package incidents_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/incidents"
)

// TestChangedSince: the incidents changed at or after a time, oldest
// change first, limited; an infinite updated_at written by SQL is skipped;
// a bad limit is ErrInvalid.
func TestChangedSince(t *testing.T) {
	clk := newClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	s, pool := newStore(t, incidents.Options{Now: clk.Now})
	ctx := ctxT(t)
	old, err := s.Open(ctx, incidents.NewIncident{Title: "old", Source: "a"})
	require.NoError(t, err)
	clk.Advance(time.Minute)
	mark := clk.Now()
	a, err := s.Open(ctx, incidents.NewIncident{Title: "a", Source: "a"})
	require.NoError(t, err)
	clk.Advance(time.Second)
	_, err = s.Acknowledge(ctx, old.ID)
	require.NoError(t, err)
	// A row dated at infinity (refused by a constraint since version 5,
	// but older rows may hold one) is never returned.
	_, err = pool.Exec(ctx, `ALTER TABLE incidents DROP CONSTRAINT incidents_times_within_years_1_to_9999`)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `INSERT INTO incidents (title, source, updated_at) VALUES ('inf', 'a', 'infinity')`)
	require.NoError(t, err)

	got, err := s.ChangedSince(ctx, mark, 10)
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.Equal(t, a.ID, got[0].ID)
	assert.Equal(t, old.ID, got[1].ID)
	assert.Equal(t, incidents.StatusAcknowledged, got[1].Status)

	got, err = s.ChangedSince(ctx, mark, 1)
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, a.ID, got[0].ID)

	got, err = s.ChangedSince(ctx, clk.Now().Add(time.Hour), 10)
	require.NoError(t, err)
	assert.Empty(t, got)

	for _, bad := range []int{0, -1, incidents.MaxChangedLimit + 1} {
		_, err = s.ChangedSince(ctx, mark, bad)
		assert.ErrorIs(t, err, incidents.ErrInvalid, "limit %d", bad)
	}
}
