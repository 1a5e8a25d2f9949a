package incidents_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/incidents"
)

// TestByFingerprint: the newest firing episode of each fingerprint is
// returned, fingerprints without incidents are absent, and a too long
// list is refused.
func TestByFingerprint(t *testing.T) {
	s, _ := newStore(t, incidents.Options{})
	ctx := ctxT(t)
	start := time.Date(2026, 2, 10, 5, 0, 0, 0, time.UTC)
	fire := func(fp string, at time.Time) {
		t.Helper()
		_, err := s.Ingest(ctx, incidents.WebhookMessage{Version: "4", Alerts: []incidents.WebhookAlert{
			{Status: "firing", Labels: map[string]string{"alertname": "Disk" + fp}, StartsAt: at, Fingerprint: fp},
		}}, incidents.IntakeOptions{})
		require.NoError(t, err)
	}
	fire("aaa", start)
	fire("aaa", start.Add(time.Hour)) // a second episode: the newer one wins
	fire("bbb", start)
	_, err := s.Open(ctx, incidents.NewIncident{Title: "by hand", Source: "x"})
	require.NoError(t, err)

	got, err := s.ByFingerprint(ctx, []string{"aaa", "bbb", "ccc"})
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.Equal(t, "Diskaaa", got["aaa"].Title)
	require.NotNil(t, got["aaa"].StartsAt)
	assert.Equal(t, start.Add(time.Hour), *got["aaa"].StartsAt)
	assert.Equal(t, incidents.StatusOpen, got["bbb"].Status)

	empty, err := s.ByFingerprint(ctx, nil)
	require.NoError(t, err)
	assert.Empty(t, empty)

	_, err = s.ByFingerprint(ctx, make([]string, incidents.MaxFingerprints+1))
	assert.True(t, errors.Is(err, incidents.ErrInvalid), "%v", err)
}
