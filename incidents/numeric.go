package incidents

import (
	"encoding/binary"
	"errors"
	"math"
	"strconv"
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
	for i := 0; i < n; i++ {
		if binary.BigEndian.Uint16(digits[2*i:]) > 9999 {
			return 0, errNumeric
		}
	}
	e := 4 * (weight - n + 1)
	v, ok := numericFast(digits, n, e)
	if !ok {
		var buf [8 + 4*64]byte
		s := buf[:0]
		for i := 0; i < n; i++ {
			d := binary.BigEndian.Uint16(digits[2*i:])
			s = append(s, byte('0'+d/1000), byte('0'+d/100%10), byte('0'+d/10%10), byte('0'+d%10))
		}
		s = append(s, 'e')
		s = strconv.AppendInt(s, int64(e), 10)
		f, err := strconv.ParseFloat(string(s), 64)
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

// numericFast converts the n base-10000 digits times 10^e when the value
// is an integer mantissa of at most 2^53 (trailing decimal zeros dropped)
// times an exactly representable power of ten: one correctly rounded
// multiplication or division, the nearest float64.
func numericFast(digits []byte, n, e int) (float64, bool) {
	if n == 0 {
		return 0, true
	}
	var m uint64
	for i := 0; i < n; i++ {
		if m > (1<<53)/10000 {
			return 0, false
		}
		m = m*10000 + uint64(binary.BigEndian.Uint16(digits[2*i:]))
	}
	for m != 0 && m%10 == 0 {
		m /= 10
		e++
	}
	switch {
	case m > 1<<53:
		return 0, false
	case e >= 0 && e < len(pow10):
		return float64(m) * pow10[e], true
	case e < 0 && -e < len(pow10):
		return float64(m) / pow10[-e], true
	}
	return 0, false
}
