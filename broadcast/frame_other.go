//go:build !linux || 386

package broadcast

import "syscall"

// rawWrites is false where writeNonblocking is not implemented (off Linux,
// and on linux/386, which has no sendto system call of its own):
// frameConn.writeFrame then writes through net.Conn.
const rawWrites = false

// writeNonblocking is never called where rawWrites is false.
func writeNonblocking(fd uintptr, p []byte) ([]byte, syscall.Errno) {
	return p, syscall.EAGAIN
}
