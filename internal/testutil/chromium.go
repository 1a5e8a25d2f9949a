package testutil

import (
	"os/exec"
	"testing"
)

// Chromium returns the path of the Chromium binary (Debian package chromium),
// skipping the test (failing in CI) when it is absent.
func Chromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	SkipOrFail(t, "chromium not found in PATH: install the Debian package \"chromium\" (apt-get install chromium)")
	return ""
}
