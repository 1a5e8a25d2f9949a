package promflowtest

import (
	"testing"

	"github.com/promflow/promflow/internal/testutil"
)

// InCI reports whether the CI environment variable is set (to anything but
// "", "false" or "0"). With CI set, a helper whose server or binary is
// missing fails the test instead of skipping it.
func InCI() bool { return testutil.InCI() }

// SkipOrFail skips the test with the message locally, and fails it when
// [InCI] is true, so that CI can never go green by skipping.
func SkipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	testutil.SkipOrFail(t, format, args...)
}
