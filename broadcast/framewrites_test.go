package broadcast

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/promflow/promflow/internal/testutil"
)

// TestControlFramesAreSingleWrites guards the assumption frameConn rests on
// (frame.go): coder/websocket, at the version in go.mod, writes each frame
// it sends on a hub connection (ping, pong, close: the hub sends it no data
// messages) with exactly one Write to the connection, and the hub writes
// each of its data frames with one Write too. frameConn.Write holds its
// lock for one Write, so that is what keeps the hub's frames from landing
// inside one of coder/websocket's, and it recognises a close frame by the
// first byte of a Write. If an upgrade of coder/websocket splits a frame
// over two Writes, or puts two frames in one, this test fails.
//
// Every Write on the server side of real hub connections is recorded below
// frameConn (a listener that wraps the accepted connections; they have no
// file descriptor to offer, so the hub writes through net.Conn, the
// portable path). Client a gets data messages of every header size, is
// pinged by the hub, pings the hub (the hub's pong) and closes (the hub's
// close reply); client b is closed by Shutdown (the hub's own close frame).
// It runs without and with compression: with it, the hub's large data
// frames are compressed (RSV1) and coder/websocket's control frames must
// still be whole single Writes, never compressed.
func TestControlFramesAreSingleWrites(t *testing.T) {
	for _, compression := range []bool{false, true} {
		t.Run(fmt.Sprintf("compression=%v", compression), func(t *testing.T) {
			testControlFramesAreSingleWrites(t, compression)
		})
	}
}

func testControlFramesAreSingleWrites(t *testing.T, compression bool) {
	before := goleak.IgnoreCurrent()
	h := newHub(t, HubOptions{PingInterval: 10 * time.Millisecond, Compression: compression})
	srv := httptest.NewUnstartedServer(h)
	ln := &recordingListener{Listener: srv.Listener}
	srv.Listener = ln
	srv.Start()
	defer func() {
		srv.Close()
		goleak.VerifyNone(t, before)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()

	mode := websocket.CompressionDisabled
	if compression {
		mode = websocket.CompressionNoContextTakeover
	}
	a, b := newReadingClient(ctx, t, srv, mode), newReadingClient(ctx, t, srv, mode)
	a.next(t)
	b.next(t) // connection messages
	sizes := []int{2, 125, 126, 127, 4096, 65535, 65536, 70000}
	for _, n := range sizes {
		msg := `"` + strings.Repeat("x", n-2) + `"`
		require.NoError(t, h.PublishRaw(TopicIncident, []byte(msg)))
		require.Len(t, a.next(t), n)
		require.Len(t, b.next(t), n)
	}
	require.Len(t, ln.all(), 2)
	testutil.Eventually(t, testTimeout, func() error {
		for i, c := range ln.all() {
			if !c.sent(0x9) {
				return fmt.Errorf("connection %d: no ping from the hub yet", i)
			}
		}
		return nil
	})
	require.NoError(t, a.conn.Ping(ctx), "the hub did not answer a ping")
	require.NoError(t, a.conn.Close(websocket.StatusNormalClosure, "done"))
	require.NoError(t, h.Shutdown(ctx))
	assert.Equal(t, websocket.StatusGoingAway, websocket.CloseStatus(<-b.errc))

	want := [][]byte{{0x1, 0x8, 0x9, 0xA}, {0x1, 0x8, 0x9}}
	for i, c := range ln.all() {
		ops, compressed, err := c.frames(compression)
		require.NoError(t, err, "connection %d", i)
		for _, op := range want[i] {
			assert.Contains(t, ops, op, "connection %d: no frame with opcode %#x", i, op)
		}
		if compression {
			// The messages of 256 bytes or more: 4096 to 70000.
			assert.Equal(t, 4, compressed, "connection %d: compressed frames", i)
		} else {
			assert.Zero(t, compressed)
		}
	}
}

// readingClient is a coder/websocket client whose messages are read by a
// goroutine of its own (so that it answers the hub's pings and its own
// Ping sees the pong).
type readingClient struct {
	conn *websocket.Conn
	msgs chan []byte
	errc chan error // the error that ended reading
}

func newReadingClient(ctx context.Context, t *testing.T, srv *httptest.Server, mode websocket.CompressionMode) *readingClient {
	t.Helper()
	conn, _, err := websocket.Dial(ctx, wsURL(srv), &websocket.DialOptions{CompressionMode: mode})
	require.NoError(t, err)
	conn.SetReadLimit(-1)
	c := &readingClient{conn: conn, msgs: make(chan []byte, 64), errc: make(chan error, 1)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			_, p, err := conn.Read(ctx)
			if err != nil {
				c.errc <- err
				return
			}
			c.msgs <- p
		}
	}()
	t.Cleanup(func() {
		_ = conn.CloseNow()
		<-done
	})
	return c
}

// next returns the next message.
func (c *readingClient) next(t *testing.T) []byte {
	t.Helper()
	select {
	case p := <-c.msgs:
		return p
	case err := <-c.errc:
		t.Fatalf("read: %v", err)
	case <-time.After(testTimeout):
		t.Fatal("no message")
	}
	return nil
}

// recordingListener records every Write on the connections it accepts.
type recordingListener struct {
	net.Listener
	mu    sync.Mutex
	conns []*recordingConn
}

func (l *recordingListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	c := &recordingConn{Conn: nc}
	l.mu.Lock()
	l.conns = append(l.conns, c)
	l.mu.Unlock()
	return c, nil
}

func (l *recordingListener) all() []*recordingConn {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.conns)
}

// recordingConn keeps a copy of what each Write call was given. Embedding
// only net.Conn, it offers no SyscallConn: frameConn has no raw sends.
type recordingConn struct {
	net.Conn
	mu     sync.Mutex
	writes [][]byte
}

func (c *recordingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.writes = append(c.writes, bytes.Clone(p))
	c.mu.Unlock()
	return c.Conn.Write(p)
}

// sent reports whether a Write so far began like a frame with opcode op.
func (c *recordingConn) sent(op byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, w := range c.writes {
		if len(w) > 0 && w[0]&0x0f == op && !bytes.HasPrefix(w, []byte("HTTP/")) {
			return true
		}
	}
	return false
}

// frames checks that the Writes are the HTTP response of the handshake
// (whole, in Writes of its own) and then exactly one complete frame each,
// and returns the frames' opcodes and how many were compressed (RSV1,
// allowed on data frames only if compression was negotiated).
func (c *recordingConn) frames(compression bool) (ops []byte, compressed int, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	writes := c.writes
	var head []byte
	for len(writes) > 0 && !bytes.Contains(head, []byte("\r\n\r\n")) {
		head = append(head, writes[0]...)
		writes = writes[1:]
	}
	if !bytes.HasPrefix(head, []byte("HTTP/1.1 101 ")) || !bytes.HasSuffix(head, []byte("\r\n\r\n")) {
		return nil, 0, fmt.Errorf("handshake response not in Writes of its own: %.200q", head)
	}
	for i, w := range writes {
		op, rsv1, err := parseOneFrame(w, compression)
		if err != nil {
			return nil, 0, fmt.Errorf("write %d after the handshake (%d bytes, % x...): %w", i, len(w), w[:min(len(w), 16)], err)
		}
		ops = append(ops, op)
		if rsv1 {
			compressed++
		}
	}
	return ops, compressed, nil
}

// parseOneFrame checks that p is exactly one complete, final, unmasked
// server frame (RFC 6455 5.2) of a known opcode, and returns its opcode
// and whether it is compressed: RSV1, allowed on a data frame if
// compression was negotiated (RFC 7692 6), never on a control frame.
func parseOneFrame(p []byte, compression bool) (op byte, rsv1 bool, err error) {
	if len(p) < 2 {
		return 0, false, errors.New("shorter than a frame header")
	}
	if p[0]&0x80 == 0 {
		return 0, false, errors.New("FIN not set: a fragment")
	}
	op, rsv1 = p[0]&0x0f, p[0]&0x40 != 0
	if p[0]&0x30 != 0 || rsv1 && (!compression || op >= 0x8) {
		return 0, false, errors.New("RSV bits set")
	}
	switch op {
	case 0x1, 0x2, 0x8, 0x9, 0xA:
	default:
		return 0, false, fmt.Errorf("opcode %#x", op)
	}
	if p[1]&0x80 != 0 {
		return 0, false, errors.New("masked: a server frame must not be")
	}
	n, hdr := uint64(p[1]&0x7f), 2
	switch n {
	case 126:
		if len(p) < 4 {
			return 0, false, errors.New("16-bit length cut off")
		}
		n, hdr = uint64(binary.BigEndian.Uint16(p[2:])), 4
	case 127:
		if len(p) < 10 {
			return 0, false, errors.New("64-bit length cut off")
		}
		n, hdr = binary.BigEndian.Uint64(p[2:]), 10
	}
	if op >= 0x8 && n > 125 {
		return 0, false, fmt.Errorf("control frame with a %d-byte payload", n)
	}
	if uint64(len(p)-hdr) != n {
		return 0, false, fmt.Errorf("header says %d payload bytes, the Write has %d", n, len(p)-hdr)
	}
	return op, rsv1, nil
}
