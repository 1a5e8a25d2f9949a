package promquery

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a test leaves a goroutine behind: the client
// starts none of its own, and every request's goroutines must end with it.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
