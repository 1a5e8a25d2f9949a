//go:build !unix

package promflowtest

import (
	"os"
	"syscall"
)

// sysProcAttr sets nothing: Windows has no process groups in the Unix
// sense, and a console's Ctrl-C reaches every process attached to it.
func sysProcAttr() *syscall.SysProcAttr { return nil }

// terminate kills p: Windows has no SIGTERM (os.Process.Signal supports
// only os.Kill there).
func terminate(p *os.Process) error { return p.Kill() }
