package servicemetrics_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/servicemetrics"
)

func TestParseInterval(t *testing.T) {
	for in, want := range map[string]time.Duration{
		// A bare number is milliseconds, as the original's POLL_INTERVAL
		// (docker-compose sets 10000).
		"10000": 10 * time.Second, "250": 250 * time.Millisecond, "1000": time.Second,
		"10s": 10 * time.Second, "250ms": 250 * time.Millisecond, "1m30s": 90 * time.Second,
	} {
		got, err := servicemetrics.ParseInterval(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{"", "0", "5", "-1s", "-1000", "1.5", "abc", "soon", "NaN", "1e9", "0x10", "48h", "99999999999"} {
		_, err := servicemetrics.ParseInterval(bad)
		assert.Error(t, err, bad)
	}
}
