package incidents

import (
	"encoding/binary"
	"errors"
	"math"
	"strconv"
	"strings"
)

var errNumeric = errors.New("incidents: malformed numeric")

// pow10 holds the powers of ten that float64 represents exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// numericFloat decodes a numeric column in PostgreSQL's binary format
// (int16 digit count, int16 weight, uint16 sign, int16 display scale,
// then base-10000 digits) to the float64 nearest to it: the value a
// ::float8 cast gives, without making the server format every sum. A
// mantissa of at most 2^53 with an exact power of ten is one correctly
// rounded operation; anything else goes through strconv.ParseFloat.
func numericFloat(b []byte) (float64, error) {
	if len(b) < 8 {
		return 0, errNumeric
	}
	n := int(int16(binary.BigEndian.Uint16(b)))
	weight := int(int16(binary.BigEndian.Uint16(b[2:])))
	sign := binary.BigEndian.Uint16(b[4:])
	if n < 0 || len(b) != 8+2*n {
		return 0, errNumeric
	}
	switch sign {
	case 0x0000, 0x4000:
	case 0xC000:
		return math.NaN(), nil
	case 0xD000:
		return math.Inf(1), nil
	case 0xF000:
		return math.Inf(-1), nil
	default:
		return 0, errNumeric
	}
	digits := b[8:]
	var m uint64
	fits := n <= 4 // 4 base-10000 digits are at most 16 decimal digits
	for i := 0; i < n; i++ {
		d := binary.BigEndian.Uint16(digits[2*i:])
		if d > 9999 {
			return 0, errNumeric
		}
		m = m*10000 + uint64(d)
	}
	e := 4 * (weight - n + 1)
	var v float64
	switch {
	case n == 0:
		v = 0
	case fits && m <= 1<<53 && e >= 0 && e < len(pow10):
		v = float64(m) * pow10[e]
	case fits && m <= 1<<53 && e < 0 && -e < len(pow10):
		v = float64(m) / pow10[-e]
	default:
		var s strings.Builder
		for i := 0; i < n; i++ {
			s.WriteString(strconv.FormatUint(uint64(binary.BigEndian.Uint16(digits[2*i:]))+10000, 10)[1:])
		}
		s.WriteString("e")
		s.WriteString(strconv.Itoa(e))
		f, err := strconv.ParseFloat(s.String(), 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return 0, errNumeric
		}
		v = f
	}
	if sign == 0x4000 {
		v = -v
	}
	return v, nil
}
