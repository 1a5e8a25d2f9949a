//go:build unix && !linux

package promflowtest

import (
	"os"
	"syscall"
)

// sysProcAttr puts a child in its own process group, so that a Ctrl-C in a
// terminal reaches the parent first and the parent decides when children
// stop. (There is no Pdeathsig off Linux: a child of a test binary that
// crashes keeps running until killed.)
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// terminate asks p to end.
func terminate(p *os.Process) error { return p.Signal(syscall.SIGTERM) }
