//go:build linux && !386

// The raw send fast path exists where Linux has a sendto system call of its
// own; linux/386 multiplexes socket calls through socketcall(2) and uses the
// portable path (frame_other.go).

package broadcast

import (
	"syscall"
	"unsafe"
)

// rawWrites tells frameConn.writeFrame to try writeNonblocking first.
const rawWrites = true

// writeNonblocking sends p on the socket fd until it is all written, the
// socket buffer is full (EAGAIN) or an error, and returns what is left. It
// uses send(2) with MSG_DONTWAIT (never waits, whatever the descriptor's
// flags) and MSG_NOSIGNAL (a closed peer is EPIPE, not SIGPIPE), which
// also skips write(2)'s file layer. It makes the system call without
// telling the Go scheduler (syscall.RawSyscall6): a send that cannot wait,
// and on a fan-out of thousands of writes the scheduler's bookkeeping of a
// blocking call (its monitor taking the processor away from a write that
// runs for more than 20 µs, threads parked and woken) costs more than the
// writes' own work. A full buffer returns EAGAIN, which the caller waits
// out through the poller like any net.Conn write.
func writeNonblocking(fd uintptr, p []byte) ([]byte, syscall.Errno) {
	for len(p) > 0 {
		n, _, errno := syscall.RawSyscall6(syscall.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)),
			syscall.MSG_DONTWAIT|syscall.MSG_NOSIGNAL, 0, 0)
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
