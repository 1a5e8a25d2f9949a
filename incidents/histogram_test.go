package incidents

import (
	"encoding/binary"
	"encoding/hex"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every log slot's representative is within PercentileRelativeError of any
// value of the slot, edges included.
func TestRepresentativeBound(t *testing.T) {
	for b := 2; b < histOverflow; b++ {
		lo := histMin * math.Pow(2, float64(b-2)/histPerDoubling)
		hi := histMin * math.Pow(2, float64(b-1)/histPerDoubling)
		r := representative(b)
		require.True(t, lo <= r && r < hi, "slot %d", b)
		for _, v := range []float64{lo, hi, (lo + hi) / 2} {
			assert.LessOrEqual(t, math.Abs(r-v)/v, PercentileRelativeError+1e-12, "slot %d value %g", b, v)
		}
	}
	assert.InDelta(t, 0.0443, PercentileRelativeError, 0.0001)
	assert.LessOrEqual(t, representative(1), PercentileAbsoluteError)
	assert.Equal(t, math.Pow(2, 26), representative(histOverflow))
}

func TestHistogramDecodeAndQuantile(t *testing.T) {
	// Slots 100..102 hold 1, 0, 3.
	raw := make([]byte, 2+12)
	binary.BigEndian.PutUint16(raw, 100)
	binary.BigEndian.PutUint32(raw[2:], 1)
	binary.BigEndian.PutUint32(raw[10:], 3)
	var bin, txt histogram
	require.NoError(t, bin.addRaw(raw, true))
	require.NoError(t, txt.addRaw([]byte(`\x`+hex.EncodeToString(raw)), false))
	assert.Equal(t, bin, txt)
	assert.Equal(t, int64(1), bin[100])
	assert.Equal(t, int64(3), bin[102])
	require.NoError(t, bin.addRaw(nil, true))
	require.NoError(t, bin.addRaw([]byte{}, true))
	assert.Error(t, bin.addRaw([]byte{0, 1, 2}, true))
	assert.Error(t, bin.addRaw([]byte(`zz`), false))

	// Ranks 0 | 1 2 3: p50 of 4 values interpolates between ranks 1 and 2,
	// both in slot 102.
	assert.Equal(t, representative(102), bin.quantile(0.5, 4))
	assert.Equal(t, representative(100), bin.quantile(0, 4))
	// p10: pos 0.3 between slot 100 and slot 102.
	want := representative(100) + 0.3*(representative(102)-representative(100))
	assert.InDelta(t, want, bin.quantile(0.1, 4), 1e-9)
	assert.True(t, math.IsNaN(bin.quantile(0.5, 0)))
}
