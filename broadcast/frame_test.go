package broadcast

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/internal/testutil"
)

// TestFrameSizes sends messages around every payload length boundary of the
// frame header (7-bit, 16-bit and 64-bit lengths) while the hub pings every
// millisecond, and checks that a coder/websocket client reads each one back
// intact and in order: the hub's prepared data frames and coder/websocket's
// control frames share the connection without interleaving.
//
// Both write paths.
func TestFrameSizes(t *testing.T) {
	forEachWritePath(t, testFrameSizes)
}

func testFrameSizes(t *testing.T, portable bool) {
	h, srv := startHubPath(t, HubOptions{PingInterval: time.Millisecond}, portable)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var pings atomic.Int64
	c, _, err := websocket.Dial(ctx, wsURL(srv), &websocket.DialOptions{
		OnPingReceived: func(context.Context, []byte) bool { pings.Add(1); return true },
	})
	require.NoError(t, err)
	defer c.CloseNow()
	c.SetReadLimit(-1)
	readMsg(t, c) // connection

	sizes := []int{2, 125, 126, 127, 65535, 65536, 70000}
	for round := 0; round < 20 || pings.Load() == 0; round++ {
		require.Less(t, round, 10000, "no ping arrived")
		// Each message is a JSON string of n bytes, naming its round when
		// there is room.
		var want []string
		for _, n := range sizes {
			tag := fmt.Sprintf("%d:", round)
			if n < 16 {
				tag = ""
			}
			msg := `"` + tag + strings.Repeat("x", n-2-len(tag)) + `"`
			want = append(want, msg)
			require.NoError(t, h.PublishRaw(TopicIncident, []byte(msg)))
		}
		for _, w := range want {
			require.Equal(t, w, readRaw(t, c))
		}
	}
	assert.Positive(t, pings.Load())
}

func TestTextFrameHeader(t *testing.T) {
	for _, tc := range []struct {
		n    int
		head []byte
	}{
		{0, []byte{0x81, 0}},
		{125, []byte{0x81, 125}},
		{126, []byte{0x81, 126, 0, 126}},
		{65535, []byte{0x81, 126, 0xff, 0xff}},
		{65536, []byte{0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0}},
	} {
		p := bytes.Repeat([]byte{'a'}, tc.n)
		f := textFrame(p)
		assert.Equal(t, tc.head, f[:len(tc.head)], "length %d", tc.n)
		assert.Equal(t, p, f[len(tc.head):], "length %d", tc.n)
	}
}

// TestNoDataFrameAfterClose checks that once a close frame has gone out
// through the connection, a prepared frame is refused, not sent.
func TestNoDataFrameAfterClose(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	fc := newFrameConn(a)
	defer fc.Close()
	got := make(chan []byte, 1)
	go func() {
		all, _ := io.ReadAll(b)
		got <- all
	}()
	require.NoError(t, fc.writeFrame(textFrame([]byte(`"before"`))))
	closeFrame := []byte{0x88, 2, 0x03, 0xe8} // close, 1000
	_, err := fc.Write(closeFrame)
	require.NoError(t, err)
	require.ErrorIs(t, fc.writeFrame(textFrame([]byte(`"after"`))), net.ErrClosed)
	require.NoError(t, fc.Close())
	assert.Equal(t, append(textFrame([]byte(`"before"`)), closeFrame...), <-got)
}

// tcpPair returns both ends of a loopback TCP connection; peer is closed
// when the test ends.
func tcpPair(t *testing.T) (server, peer net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	peer, err = net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { _ = peer.Close() })
	server, err = ln.Accept()
	require.NoError(t, err)
	return server, peer
}

// TestWriteFrameWaitsForRoom writes far more than the socket buffers hold
// to a peer that does not read yet: writeFrame must wait for room through
// the poller (not fail, not lose or reorder bytes).
func TestWriteFrameWaitsForRoom(t *testing.T) {
	if !rawWrites {
		t.Skip("counts the raw send's fallbacks to the poller, which exist on Linux only")
	}
	nc, peer := tcpPair(t)
	require.NoError(t, peer.(*net.TCPConn).SetReadBuffer(64<<10))
	require.NoError(t, nc.(*net.TCPConn).SetWriteBuffer(64<<10))
	fc := newFrameConn(nc)
	defer fc.Close()

	const frames, size = 256, 64 << 10 // 16 MiB
	errc := make(chan error, 1)
	go func() {
		for i := range frames {
			p := bytes.Repeat([]byte{byte('a' + i%26)}, size)
			if err := fc.writeFrame(textFrame(p)); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	// Read only once the writer has found the buffers full.
	testutil.Eventually(t, testTimeout, func() error {
		if fc.waits.Load() == 0 {
			return errors.New("the writer has not found the socket buffer full")
		}
		return nil
	})

	var hdr [10]byte
	for i := range frames {
		_, err := io.ReadFull(peer, hdr[:])
		require.NoError(t, err)
		require.Equal(t, []byte{0x81, 127}, hdr[:2])
		require.Equal(t, uint64(size), binary.BigEndian.Uint64(hdr[2:]))
		p := make([]byte, size)
		_, err = io.ReadFull(peer, p)
		require.NoError(t, err)
		require.Equal(t, bytes.Repeat([]byte{byte('a' + i%26)}, size), p, "frame %d", i)
	}
	require.NoError(t, <-errc)
}

// TestCloseEndsBlockedWrite checks that Close does not wait for a write
// stuck on a full socket buffer (the write must end with an error, which
// is how the hub's write timeout works), and that writes after Close fail
// without reaching the socket.
func TestCloseEndsBlockedWrite(t *testing.T) {
	if !rawWrites {
		t.Skip("counts the raw send's fallbacks to the poller, which exist on Linux only")
	}
	nc, _ := tcpPair(t)
	fc := newFrameConn(nc)

	frame := textFrame(bytes.Repeat([]byte("x"), 1<<20))
	errc := make(chan error, 1)
	go func() {
		for {
			if err := fc.writeFrame(frame); err != nil {
				errc <- err
				return
			}
		}
	}()
	testutil.Eventually(t, testTimeout, func() error {
		if fc.waits.Load() == 0 {
			return errors.New("the writer has not found the socket buffer full")
		}
		return nil
	})
	closed := make(chan error, 1)
	go func() { closed <- fc.Close() }()
	select {
	case err := <-closed:
		require.NoError(t, err)
	case <-time.After(testTimeout):
		t.Fatal("Close waited for a blocked write")
	}
	select {
	case err := <-errc:
		require.ErrorIs(t, err, net.ErrClosed)
	case <-time.After(testTimeout):
		t.Fatal("the blocked write did not end after Close")
	}
	require.ErrorIs(t, fc.writeFrame(textFrame([]byte("late"))), net.ErrClosed)
	require.ErrorIs(t, fc.Close(), net.ErrClosed)
}

// TestCloseWhileWriting closes connections while other goroutines write
// to them (run with -race): every write either succeeds or fails with
// net.ErrClosed, and none after Close returned succeeds.
func TestCloseWhileWriting(t *testing.T) {
	frame := textFrame([]byte(`{"type":"x"}`))
	for range 50 {
		nc, peer := tcpPair(t)
		go func() { _, _ = io.Copy(io.Discard, peer) }()
		fc := newFrameConn(nc)
		var wg sync.WaitGroup
		var afterClose atomic.Bool
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					closedBefore := afterClose.Load()
					err := fc.writeFrame(frame)
					if err != nil {
						assert.ErrorIs(t, err, net.ErrClosed)
						return
					}
					assert.False(t, closedBefore, "a write succeeded after Close returned")
				}
			}()
		}
		require.NoError(t, fc.Close())
		afterClose.Store(true)
		wg.Wait()
		peer.Close()
	}
}
