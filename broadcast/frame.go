package broadcast

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// textFrame returns payload as one unmasked, final WebSocket text frame
// (RFC 6455 section 5.2). A server's frames are never masked, so the frame
// is the same for every client: the hub builds it once per message and
// writes those bytes to each client as they are.
func textFrame(payload []byte) []byte {
	f := appendFrameHeader(make([]byte, 0, 10+len(payload)), 0x80|0x1, len(payload)) // FIN, text
	return append(f, payload...)
}

// appendFrameHeader appends the header of an unmasked frame whose first
// byte is b0 (FIN, RSV bits, opcode) and whose payload is n bytes.
func appendFrameHeader(f []byte, b0 byte, n int) []byte {
	switch {
	case n < 126:
		return append(f, b0, byte(n))
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16(append(f, b0, 126), uint16(n))
	default:
		return binary.BigEndian.AppendUint64(append(f, b0, 127), uint64(n))
	}
}

// framePayload returns the payload of a frame built by textFrame.
func framePayload(f []byte) []byte {
	switch f[1] & 0x7f {
	case 126:
		return f[4:]
	case 127:
		return f[10:]
	default:
		return f[2:]
	}
}

// frameConn is a client's connection as coder/websocket sees it (the hub
// hands it over from Hijack). coder/websocket does everything but the
// hub's data messages through it: the handshake, reading, pongs, pings and
// the close handshake. The hub writes its data messages, as frames
// prepared once per message (textFrame), with writeFrame. mu keeps the two
// from interleaving: coder/websocket writes every frame with a single Write
// (the hub sends it no data messages, so it only writes control frames,
// which fit its buffer), and writeFrame writes a whole frame in one Write
// too. Write also recognises a close frame by the first byte of a Write.
// Both rest on how coder/websocket writes, which it does not document:
// TestControlFramesAreSingleWrites records every Write of real hub
// connections (pings, pongs, close frames and data frames) and fails if
// the version in go.mod ever splits a frame over Writes or joins two in
// one. Writing a prepared frame skips coder/websocket's per-message work
// (two channel locks, framing, copying the payload into the connection's
// buffer): on a fan-out to thousands of clients, most of the hub's
// user-space CPU per delivery.
type frameConn struct {
	net.Conn
	raw       syscall.RawConn // nil if Conn has no file descriptor
	mu        sync.Mutex
	closeSent bool // a close frame went out: no data frame may follow (RFC 6455 5.5.1)
	portable  bool // never use raw sends (tests of the portable path)

	waits  atomic.Int64 // writes that found the socket buffer full (for tests)
	writes atomic.Int64 // tryWriteFrame calls (for tests)
}

func newFrameConn(nc net.Conn) *frameConn {
	fc := &frameConn{Conn: nc}
	if sc, ok := nc.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			fc.raw = raw
		}
	}
	return fc
}

// Write is coder/websocket's path to the connection: one whole frame per
// call.
func (fc *frameConn) Write(p []byte) (int, error) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if len(p) > 0 && p[0]&0x0f == 0x8 {
		fc.closeSent = true
	}
	return fc.Conn.Write(p)
}

// rawSends reports whether writes to fc go through raw sends (and so may
// carry several frames at once: they bypass coder/websocket's Write).
func (fc *frameConn) rawSends() bool { return rawWrites && fc != nil && fc.raw != nil && !fc.portable }

// writeFrame writes one prepared frame, unless a close frame has been sent,
// waiting for room in the socket buffer if need be.
func (fc *frameConn) writeFrame(frame []byte) error {
	rest, err := fc.tryWriteFrame(frame)
	if err != nil || len(rest) == 0 {
		return err
	}
	return fc.finishFrame(rest)
}

// tryWriteFrame writes what of prepared frames (one, or on the raw path
// several back to back) the socket buffer takes
// without waiting. If the buffer fills first it returns the rest of the
// frame with fc.mu still held, so that nothing can be written between the
// two parts: the caller must pass rest to finishFrame (from any
// goroutine). Where raw sends do not exist (or fc.portable is set) it
// writes the whole frame through net.Conn, waiting as long as that takes.
func (fc *frameConn) tryWriteFrame(frame []byte) (rest []byte, err error) {
	fc.writes.Add(1)
	fc.mu.Lock()
	if fc.closeSent {
		fc.mu.Unlock()
		return nil, net.ErrClosed
	}
	if !fc.rawSends() {
		_, err = fc.Conn.Write(frame)
		fc.mu.Unlock()
		return nil, err
	}
	p := frame
	var errno syscall.Errno
	err = fc.raw.Control(func(fd uintptr) { p, errno = writeNonblocking(fd, p) })
	switch {
	case err == nil && len(p) == 0:
	case err != nil:
	case errno != syscall.EAGAIN:
		err = fmt.Errorf("broadcast: send: %w", errno)
	default:
		// The socket buffer is full: the rest waits for room, the lock
		// stays held.
		fc.waits.Add(1)
		return p, nil
	}
	fc.mu.Unlock()
	return nil, err
}

// finishFrame writes the rest of a frame that tryWriteFrame could not
// finish, waiting for room through the poller, and releases fc.mu.
func (fc *frameConn) finishFrame(rest []byte) error {
	defer fc.mu.Unlock()
	_, err := fc.Conn.Write(rest)
	return err
}

// hijackWriter is the http.ResponseWriter the hub gives websocket.Accept:
// its Hijack wraps the connection in a frameConn (and points the buffered
// writer coder/websocket uses at it).
type hijackWriter struct {
	http.ResponseWriter
	fc      *frameConn
	deflate bool // the 101 response accepted permessage-deflate
}

// Hijack takes over the connection from net/http and returns it wrapped in
// a frameConn, kept in w.fc for the hub.
func (w *hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	// coder/websocket has written the 101 response's headers by now,
	// with the extensions it accepted.
	w.deflate = negotiatedDeflate(w.ResponseWriter.Header())
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	// The 101 response may still sit in the buffer: send it on the
	// original connection before the writer is pointed at the wrapper.
	if err := brw.Writer.Flush(); err != nil {
		_ = nc.Close()
		return nil, nil, err
	}
	// The server's read and write deadlines (http.Server.ReadTimeout,
	// WriteTimeout) stay on a hijacked connection: a long-lived WebSocket
	// must not inherit them. The hub enforces its own timeouts.
	_ = nc.SetDeadline(time.Time{})
	w.fc = newFrameConn(nc)
	brw.Writer.Reset(w.fc)
	return w.fc, brw, nil
}

var _ http.Hijacker = (*hijackWriter)(nil)
