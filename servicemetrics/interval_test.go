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
		"10s": 10 * time.Second, "10": 10 * time.Second, "5": 5 * time.Second,
		"1.5": 1500 * time.Millisecond, "0.5": 500 * time.Millisecond, "250ms": 250 * time.Millisecond,
	} {
		got, err := servicemetrics.ParseInterval(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{"", "0", "-1s", "abc", "soon", "NaN", "1e9", "1e300"} {
		_, err := servicemetrics.ParseInterval(bad)
		assert.Error(t, err, bad)
	}
}
