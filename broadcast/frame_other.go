//go:build !linux

package broadcast

import "syscall"

// rawWrites is false where writeNonblocking is not implemented:
// frameConn.writeFrame then writes through net.Conn.
const rawWrites = false

// writeNonblocking is not used off Linux.
func writeNonblocking(fd uintptr, p []byte) ([]byte, syscall.Errno) {
	return p, syscall.EAGAIN
}
