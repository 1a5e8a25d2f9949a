package broadcast

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv(benchDriverEnv) != "" {
		os.Exit(runBenchDriver())
	}
	goleak.VerifyTestMain(m)
}
