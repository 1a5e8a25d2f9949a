//go:build !linux

package servicemetrics_test

import "testing"

// BenchmarkServiceFanout needs Linux: its client driver reads the
// connections with epoll, and it reads the servers' CPU and memory from
// /proc (see bench_service_linux_test.go).
func BenchmarkServiceFanout(b *testing.B) {
	b.Skip("BenchmarkServiceFanout runs on Linux only (epoll client driver, /proc)")
}
