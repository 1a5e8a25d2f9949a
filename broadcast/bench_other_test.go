//go:build !linux

package broadcast

import (
	"fmt"
	"os"
	"testing"
)

// BenchmarkFanout needs Linux: its client driver reads every connection
// from one epoll loop (benchclient_test.go).
func BenchmarkFanout(b *testing.B) {
	b.Skip("BenchmarkFanout runs on Linux only (its client driver uses epoll)")
}

// runBenchDriver is never started off Linux (BenchmarkFanout skips).
func runBenchDriver() int {
	fmt.Fprintln(os.Stderr, "bench driver: Linux only")
	return 2
}
