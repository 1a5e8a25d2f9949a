package servicemetrics

import (
	"fmt"
	"strconv"
	"time"
)

// MinInterval is the shortest interval ParseInterval accepts.
const MinInterval = 10 * time.Millisecond

// ParseInterval reads an interval setting such as POLL_INTERVAL: a Go
// duration ("10s", "250ms") or, as the original service took it, a bare
// whole number of milliseconds ("10000" is 10 s). It must be at least
// MinInterval and at most a day.
func ParseInterval(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		n, nerr := strconv.ParseUint(s, 10, 32)
		if nerr != nil {
			return 0, fmt.Errorf("interval %q: want a Go duration such as 10s, or whole milliseconds such as 10000", s)
		}
		d = time.Duration(n) * time.Millisecond
	}
	if d < MinInterval || d > 24*time.Hour {
		return 0, fmt.Errorf("interval %q: want between %v and 24h (a bare number is milliseconds)", s, MinInterval)
	}
	return d, nil
}
