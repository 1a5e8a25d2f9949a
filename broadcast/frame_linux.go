package broadcast

import (
	"syscall"
	"unsafe"
)

// rawWrites tells frameConn.writeFrame to try writeNonblocking first.
const rawWrites = true

// writeNonblocking writes p to the non-blocking socket fd until it is all
// written, the socket buffer is full (EAGAIN) or an error, and returns what
// is left. It makes the system call without telling the Go scheduler
// (syscall.RawSyscall): a write to a non-blocking socket does not wait,
// and on a fan-out of thousands of writes the scheduler's bookkeeping of a
// blocking call (its monitor taking the processor away from a write that
// runs for more than 20 µs, threads parked and woken) costs more than the
// writes' own work. A full buffer returns EAGAIN, which the caller waits
// out through the poller like any net.Conn write.
func writeNonblocking(fd uintptr, p []byte) ([]byte, syscall.Errno) {
	for len(p) > 0 {
		n, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		if errno == syscall.EINTR {
			continue
		}
		if errno != 0 {
			return p, errno
		}
		p = p[n:]
	}
	return p, 0
}
