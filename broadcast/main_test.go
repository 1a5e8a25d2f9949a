package broadcast

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// benchDriverEnv set in the environment makes the test binary
// BenchmarkFanout's client driver (runBenchDriver) instead of running tests.
const benchDriverEnv = "BROADCAST_BENCH_DRIVER"

func TestMain(m *testing.M) {
	if os.Getenv(benchDriverEnv) != "" {
		os.Exit(runBenchDriver())
	}
	goleak.VerifyTestMain(m)
}
