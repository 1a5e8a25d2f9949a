package incidents_test

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that nothing the tests and benchmarks started is left
// running (pools, subscriptions, handlers).
func TestMain(m *testing.M) {
	code := m.Run()
	closeBenchPools()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
