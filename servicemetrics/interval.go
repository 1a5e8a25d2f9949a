package servicemetrics

import (
	"fmt"
	"strconv"
	"time"
)

// ParseInterval reads an interval setting such as POLL_INTERVAL: a Go
// duration ("10s") or, as the original service took it, a number of
// seconds ("10"). It must be positive.
func ParseInterval(s string) (time.Duration, error) {
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return d, nil
	}
	if n, err := strconv.ParseFloat(s, 64); err == nil && n > 0 && n < 1e6 {
		return time.Duration(n * float64(time.Second)), nil
	}
	return 0, fmt.Errorf("interval %q: want a positive duration such as 10s", s)
}
