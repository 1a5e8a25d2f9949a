package broadcast

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The messages waiting for a client go out in one send on the raw path
// (client.writeOne coalesces them), and one per write on the portable
// path; either way the peer reads every frame, whole and in order.
func TestWriteCoalescesWaitingMessages(t *testing.T) {
	forEachWritePath(t, func(t *testing.T, portable bool) {
		h, err := NewHub(HubOptions{})
		require.NoError(t, err)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer ln.Close()
		peer, err := net.Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		defer peer.Close()
		nc, err := ln.Accept()
		require.NoError(t, err)
		defer nc.Close()

		fc := newFrameConn(nc)
		fc.portable = portable
		c := &client{hub: h, out: fc, subs: h.allSubs}
		const n = 5
		for i := range n {
			c.push(&message{frame: textFrame(fmt.Appendf(nil, `{"n":%d}`, i)), topic: 0}, 0)
		}
		var w writer
		calls := 0
		for {
			calls++
			require.Less(t, calls, 2*n, "writeOne never drained the queue")
			if !c.writeOne(time.Now().UnixNano(), &w) {
				break
			}
		}
		want := int64(1)
		if !fc.rawSends() {
			want = n
		}
		require.Equal(t, want, fc.writes.Load(), "sends for %d waiting messages", n)
		require.False(t, c.writing, "the drained client is no longer scheduled")

		require.NoError(t, peer.SetReadDeadline(time.Now().Add(testTimeout)))
		r := bufio.NewReader(peer)
		for i := range n {
			want := fmt.Sprintf(`{"n":%d}`, i)
			hdr := make([]byte, 2)
			_, err := io.ReadFull(r, hdr)
			require.NoError(t, err)
			require.Equal(t, byte(0x81), hdr[0], "frame %d: FIN text", i)
			require.Equal(t, len(want), int(hdr[1]), "frame %d: length", i)
			p := make([]byte, len(want))
			_, err = io.ReadFull(r, p)
			require.NoError(t, err)
			require.Equal(t, want, string(p))
		}
	})
}
