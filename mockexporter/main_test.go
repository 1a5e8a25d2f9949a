package mockexporter_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any test leaves a goroutine behind: the
// registry starts none, and the handler's only wait (a delay fault) ends with
// the request.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
