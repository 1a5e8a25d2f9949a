package promflowtest

import (
	"os"
	"syscall"
)

// sysProcAttr puts a child in its own process group, so that a Ctrl-C in a
// terminal reaches the parent first and the parent decides when children
// stop, and has the kernel kill the child if the parent dies first
// (Pdeathsig, Linux only), so no server outlives a crashed test binary.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// terminate asks p to end.
func terminate(p *os.Process) error { return p.Signal(syscall.SIGTERM) }
