//go:build linux

package broadcast

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/internal/testutil"
)

// benchConn is the WebSocket client end used by BenchmarkFanout's driver.
//
// It is a minimal RFC 6455 client: the opening handshake by hand on a
// net.Conn, then the socket is taken out of Go's network poller (detach)
// and read by a benchLoop: unmasked server frames parsed from whatever one
// read(2) returned, pings answered with masked pongs and a close frame
// echoed. It exists because the driver shares the two cores with the
// server under test: a full client library, or even a goroutine per
// connection reading through the runtime's poller (two read(2) calls and a
// park per message), spends about as much CPU per received message as the
// server spends sending it, which would measure the driver rather than the
// server. Both implementations under benchmark are driven by the same
// client, so the comparison stays fair.
type benchConn struct {
	nc      net.Conn      // until detach
	br      *bufio.Reader // until detach
	fd      int           // after detach
	pending []byte        // bytes of an incomplete frame
	msg     []byte        // the data message being assembled from fragments
	op      byte          // its opcode, 0 if none
	rsv1    bool          // it is compressed (permessage-deflate)
	out     [2 + 4 + 125]byte
	// inflate decompresses messages when the connection negotiated
	// permessage-deflate (nil otherwise); connections read by one loop
	// share one.
	inflate *benchInflater
}

// benchDeflateOffer is the permessage-deflate offer benchmark clients
// make when asked to: Chromium's.
const benchDeflateOffer = "permessage-deflate; client_max_window_bits"

// benchInflater decompresses permessage-deflate messages (RFC 7692 7.2.2)
// for the connections of one benchLoop (not safe for concurrent use). The
// hub sends every client the same compressed bytes for a message: the
// last input and its output are kept, and an identical payload is not
// decompressed again, so that the driver does not spend a decompression
// per delivery on the CPUs it shares with the server. The payload is
// still compared in full, so every delivery is checked.
type benchInflater struct {
	fr       io.ReadCloser
	src      bytes.Reader
	last     []byte
	out      bytes.Buffer
	inflated int // decompressions done (for tests)
}

func (fi *benchInflater) decode(p []byte) ([]byte, error) {
	if fi.last != nil && bytes.Equal(p, fi.last) {
		return fi.out.Bytes(), nil
	}
	fi.last = append(fi.last[:0], p...)
	fi.inflated++
	fi.src.Reset(append(p[:len(p):len(p)], deflateTail...))
	if fi.fr == nil {
		fi.fr = flate.NewReader(&fi.src)
	} else {
		_ = fi.fr.(flate.Resetter).Reset(&fi.src, nil)
	}
	fi.out.Reset()
	if _, err := fi.out.ReadFrom(fi.fr); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		fi.last = nil
		return nil, fmt.Errorf("bench client: inflate: %w", err)
	}
	return fi.out.Bytes(), nil
}

// websocketGUID is the RFC 6455 constant of the Sec-WebSocket-Accept hash.
const websocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// dialBench opens a WebSocket connection to rawURL (ws://host/path) and
// detaches it from Go's poller. With deflate it offers permessage-deflate
// (benchDeflateOffer) and decompresses messages with inflate if the server
// accepts.
func dialBench(ctx context.Context, rawURL string, deflate *benchInflater) (*benchConn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "ws" {
		return nil, fmt.Errorf("bench client: scheme %q not supported", u.Scheme)
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	c, err := handshake(nc, u, deflate)
	if err != nil {
		_ = nc.Close()
		return nil, fmt.Errorf("bench client: handshake: %w", err)
	}
	if err := c.detach(); err != nil {
		return nil, fmt.Errorf("bench client: %w", err)
	}
	return c, nil
}

func handshake(nc net.Conn, u *url.URL, deflate *benchInflater) (*benchConn, error) {
	var key [16]byte
	_, _ = rand.Read(key[:])
	k := base64.StdEncoding.EncodeToString(key[:])
	req := "GET " + u.RequestURI() + " HTTP/1.1\r\n" +
		"Host: " + u.Host + "\r\n" +
		"Upgrade: websocket\r\n" +
		"Connection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + k + "\r\n"
	if deflate != nil {
		req += "Sec-WebSocket-Extensions: " + benchDeflateOffer + "\r\n"
	}
	req += "Sec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(nc, req); err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(nc, 4096)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return nil, fmt.Errorf("status %s", resp.Status)
	}
	if !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") {
		return nil, fmt.Errorf("upgrade header %q", resp.Header.Get("Upgrade"))
	}
	sum := sha1.Sum([]byte(k + websocketGUID))
	if got, want := resp.Header.Get("Sec-WebSocket-Accept"), base64.StdEncoding.EncodeToString(sum[:]); got != want {
		return nil, fmt.Errorf("Sec-WebSocket-Accept %q, want %q", got, want)
	}
	c := &benchConn{nc: nc, br: br, fd: -1}
	switch ext := resp.Header.Get("Sec-WebSocket-Extensions"); {
	case ext == "":
	case deflate != nil && strings.HasPrefix(ext, "permessage-deflate") && strings.Contains(ext, "server_no_context_takeover"):
		// Each message compressed on its own: what benchInflater decodes.
		c.inflate = deflate
	default:
		return nil, fmt.Errorf("unexpected extensions %q", ext)
	}
	return c, nil
}

// detach moves the connection out of Go's poller: it keeps a duplicate of
// the socket (non-blocking, like the original) and the bytes already
// buffered after the handshake, and closes the net.Conn.
func (c *benchConn) detach() error {
	sc, ok := c.nc.(syscall.Conn)
	if !ok {
		c.nc.Close()
		return fmt.Errorf("%T has no file descriptor", c.nc)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		c.nc.Close()
		return err
	}
	var derr error
	if err := rc.Control(func(fd uintptr) { c.fd, derr = syscall.Dup(int(fd)) }); err != nil {
		c.nc.Close()
		return err
	}
	if derr != nil {
		c.nc.Close()
		return fmt.Errorf("dup: %w", derr)
	}
	if err := syscall.SetNonblock(c.fd, true); err != nil {
		c.nc.Close()
		syscall.Close(c.fd)
		return err
	}
	if n := c.br.Buffered(); n > 0 {
		p, _ := c.br.Peek(n)
		c.pending = append(c.pending, p...)
	}
	c.nc.Close()
	c.nc, c.br = nil, nil
	return nil
}

// errCloseFrame is returned by consume when the server closed the
// connection with a close frame (which consume has echoed).
var errCloseFrame = errors.New("bench client: close frame received")

// consume parses the frames in the bytes pending from earlier calls plus p,
// calls fn for every complete data message (opcode 1 text or 2 binary; the
// payload is valid only during the call), answers pings and echoes a close
// frame (then returns errCloseFrame). An incomplete frame is kept for the
// next call.
func (c *benchConn) consume(p []byte, fn func(op byte, payload []byte)) error {
	buf := p
	if len(c.pending) > 0 {
		c.pending = append(c.pending, p...)
		buf = c.pending
	}
	for {
		n, err := c.frame(buf, fn)
		if err != nil {
			return err
		}
		if n == 0 {
			break
		}
		buf = buf[n:]
	}
	// Keep what is left (it may alias c.pending: copy down).
	c.pending = append(c.pending[:0], buf...)
	if cap(c.pending) > 1<<16 && len(c.pending) < 1<<10 {
		c.pending = append([]byte(nil), c.pending...)
	}
	return nil
}

// frame handles the first frame of buf and returns its length, or 0 if buf
// does not hold a whole frame yet.
func (c *benchConn) frame(buf []byte, fn func(op byte, payload []byte)) (int, error) {
	if len(buf) < 2 {
		return 0, nil
	}
	b0, b1 := buf[0], buf[1]
	// RSV1 marks a compressed message, on its first frame only.
	rsv1 := b0&0x40 != 0
	if b0&0x30 != 0 || rsv1 && (c.inflate == nil || b0&0x0f == 0 || b0&0x0f >= 8) {
		return 0, fmt.Errorf("bench client: reserved bits set in frame header %#x", b0)
	}
	if b1&0x80 != 0 {
		return 0, errors.New("bench client: masked frame from server")
	}
	fin, fop := b0&0x80 != 0, b0&0x0f
	n, hdr := uint64(b1&0x7f), 2
	switch n {
	case 126:
		if len(buf) < 4 {
			return 0, nil
		}
		n, hdr = uint64(binary.BigEndian.Uint16(buf[2:])), 4
	case 127:
		if len(buf) < 10 {
			return 0, nil
		}
		n, hdr = binary.BigEndian.Uint64(buf[2:]), 10
	}
	if n > 1<<20 || uint64(len(c.msg))+n > 1<<20 {
		return 0, errors.New("bench client: message over 1 MiB")
	}
	if uint64(len(buf)-hdr) < n {
		return 0, nil
	}
	size := hdr + int(n)
	payload := buf[hdr:size]
	if fop >= 8 { // control frame
		if n > 125 || !fin {
			return 0, errors.New("bench client: invalid control frame")
		}
		switch fop {
		case 0x9: // ping
			if err := c.writeControl(0xA, payload); err != nil {
				return 0, err
			}
		case 0x8: // close: echo the status code, then stop
			if len(payload) > 2 {
				payload = payload[:2]
			}
			_ = c.writeControl(0x8, payload)
			return 0, errCloseFrame
		}
		return size, nil
	}
	switch {
	case fop == 0 && c.op == 0:
		return 0, errors.New("bench client: continuation frame without a message")
	case fop != 0 && c.op != 0:
		return 0, errors.New("bench client: new message inside a fragmented one")
	}
	if fin && c.op == 0 { // the common case: a whole message in one frame
		return size, c.deliver(fop, rsv1, payload, fn)
	}
	if fop != 0 {
		c.op, c.rsv1 = fop, rsv1
	}
	c.msg = append(c.msg, payload...)
	if fin {
		err := c.deliver(c.op, c.rsv1, c.msg, fn)
		c.op, c.msg = 0, c.msg[:0]
		return size, err
	}
	return size, nil
}

// deliver hands a whole message to fn, decompressed first if compressed.
func (c *benchConn) deliver(op byte, compressed bool, p []byte, fn func(op byte, payload []byte)) error {
	if compressed {
		var err error
		if p, err = c.inflate.decode(p); err != nil {
			return err
		}
	}
	fn(op, p)
	return nil
}

// writeControl sends a masked control frame (payload at most 125 bytes).
func (c *benchConn) writeControl(op byte, p []byte) error {
	f := c.out[:0]
	f = append(f, 0x80|op, 0x80|byte(len(p)))
	key := mrand.Uint32()
	f = binary.LittleEndian.AppendUint32(f, key)
	var k [4]byte
	binary.LittleEndian.PutUint32(k[:], key)
	for i, b := range p {
		f = append(f, b^k[i&3])
	}
	for len(f) > 0 { // 131 bytes at most: the socket buffer has room
		n, err := syscall.Write(c.fd, f)
		if err == syscall.EINTR || err == syscall.EAGAIN {
			continue
		}
		if err != nil {
			return err
		}
		f = f[n:]
	}
	return nil
}

// epollET is EPOLLET as the uint32 of EpollEvent.Events.
const epollET = 1 << 31

// benchLoop reads benchConns from one edge-triggered epoll instance: one
// read(2) per ready connection per wake-up, no goroutine per connection.
type benchLoop struct {
	epfd  int
	conns []*benchConn // indexed by the id stored in the epoll event
	fds   []int        // every connection's socket, for shutdown
	live  int
	buf   []byte
	read  atomic.Int64 // bytes read from all connections
}

func newBenchLoop() (*benchLoop, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	return &benchLoop{epfd: epfd, buf: make([]byte, 64<<10)}, nil
}

// add registers c; it must be called before run.
func (l *benchLoop) add(c *benchConn) error {
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | epollET, Fd: int32(c.fd), Pad: int32(len(l.conns))}
	if err := syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_ADD, c.fd, &ev); err != nil {
		return fmt.Errorf("epoll_ctl: %w", err)
	}
	l.conns = append(l.conns, c)
	l.fds = append(l.fds, c.fd)
	l.live++
	return nil
}

// run reads until every connection has ended (closed by the server, a close
// frame, an error, or shutdown), calling fn(i, op, payload) for each data
// message of l.conns[i] (payload valid only during the call), and then
// closes the loop. Bytes buffered at detach are handled first.
func (l *benchLoop) run(fn func(i int, op byte, payload []byte)) {
	defer syscall.Close(l.epfd)
	for i, c := range l.conns {
		if len(c.pending) > 0 {
			if err := c.consume(nil, func(op byte, p []byte) { fn(i, op, p) }); err != nil {
				l.remove(i)
			}
		}
	}
	events := make([]syscall.EpollEvent, 256)
	for l.live > 0 {
		n, err := syscall.EpollWait(l.epfd, events, -1)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench client: epoll_wait:", err)
			return
		}
		for _, ev := range events[:n] {
			i := int(ev.Pad)
			if l.conns[i] != nil {
				l.drain(i, fn)
			}
		}
	}
}

// drain reads connection i until a read comes back short (the socket's
// queue was empty: with edge-triggered epoll, data arriving after that
// read is a new event) or would block.
func (l *benchLoop) drain(i int, fn func(i int, op byte, payload []byte)) {
	c := l.conns[i]
	for {
		// A read of a non-blocking socket never waits: RawSyscall spares
		// the scheduler's bookkeeping of a blocking call (the driver shares
		// the CPUs with the server under test).
		r, _, errno := syscall.RawSyscall(syscall.SYS_READ, uintptr(c.fd), uintptr(unsafe.Pointer(&l.buf[0])), uintptr(len(l.buf)))
		if errno == syscall.EINTR {
			continue
		}
		if errno == syscall.EAGAIN {
			return
		}
		m := int(r)
		if errno != 0 || m == 0 {
			l.remove(i)
			return
		}
		l.read.Add(int64(m))
		if err := c.consume(l.buf[:m], func(op byte, p []byte) { fn(i, op, p) }); err != nil {
			l.remove(i)
			return
		}
		if m < len(l.buf) {
			return
		}
	}
}

// remove ends connection i.
func (l *benchLoop) remove(i int) {
	c := l.conns[i]
	_ = syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_DEL, c.fd, nil)
	_ = syscall.Close(c.fd)
	l.conns[i] = nil
	l.live--
}

// shutdown makes every connection of l end: run sees end of file on each
// (safe to call from another goroutine while run is going; a socket run
// has already closed gives EBADF, ignored).
func (l *benchLoop) shutdown() {
	for _, fd := range l.fds {
		_ = syscall.Shutdown(fd, syscall.SHUT_RDWR)
	}
}

// TestBenchConn checks BenchmarkFanout's client against a coder/websocket
// server: a single-frame and a fragmented text message, a ping it must
// answer, and a close frame it must echo.
func TestBenchConn(t *testing.T) {
	pinged := make(chan error, 1)
	closed := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx, cancel := context.WithTimeout(r.Context(), testTimeout)
		defer cancel()
		if err := c.Write(ctx, websocket.MessageText, []byte("hello")); err != nil {
			return
		}
		wr, err := c.Writer(ctx, websocket.MessageText)
		if err != nil {
			return
		}
		_, _ = wr.Write([]byte(strings.Repeat("a", 200)))
		_, _ = wr.Write([]byte(strings.Repeat("b", 70000)))
		if err := wr.Close(); err != nil {
			return
		}
		// Ping needs a reader for the pong; Close waits for the echo.
		readCtx := c.CloseRead(ctx)
		pinged <- c.Ping(readCtx)
		closed <- c.Close(websocket.StatusGoingAway, "bye")
	}))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, err := dialBench(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	require.NoError(t, err)
	l, err := newBenchLoop()
	require.NoError(t, err)
	require.NoError(t, l.add(c))

	type msg struct {
		op byte
		p  string
	}
	var got []msg
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.run(func(i int, op byte, p []byte) {
			assert.Equal(t, 0, i)
			got = append(got, msg{op, string(p)})
		})
	}()
	select {
	case <-done:
	case <-ctx.Done():
		l.shutdown()
		<-done
		t.Fatal("the loop did not end at the close frame")
	}
	// The ping was answered inside the loop, which ended at the close.
	require.NoError(t, <-pinged)
	require.NoError(t, <-closed)
	assert.Equal(t, []msg{
		{1, "hello"},
		{1, strings.Repeat("a", 200) + strings.Repeat("b", 70000)},
	}, got)
}

// TestBenchConnSplitFrames feeds frames to consume in pieces of every size.
func TestBenchConnSplitFrames(t *testing.T) {
	var stream []byte
	stream = append(stream, 0x81, 5)
	stream = append(stream, "hello"...)
	big := strings.Repeat("x", 300)
	stream = append(stream, 0x01, 126, 1, 44) // text, not fin, 300 bytes
	stream = append(stream, big...)
	stream = append(stream, 0x80, 3) // continuation, fin
	stream = append(stream, "end"...)
	for size := 1; size <= len(stream); size++ {
		c := &benchConn{fd: -1}
		var got []string
		for p := stream; len(p) > 0; {
			k := min(size, len(p))
			require.NoError(t, c.consume(p[:k], func(op byte, payload []byte) {
				assert.Equal(t, byte(1), op)
				got = append(got, string(payload))
			}))
			p = p[k:]
		}
		require.Equal(t, []string{"hello", big + "end"}, got, "pieces of %d bytes", size)
		assert.Empty(t, c.pending)
	}
}

// TestBenchConnDeflate checks BenchmarkFanout's client with a hub that
// compresses: two connections offering permessage-deflate as Chromium
// does get the benchmark messages decompressed, each distinct compressed
// payload is decompressed once, and the messages are valid JSON of
// exactly benchMsgSize bytes.
func TestBenchConnDeflate(t *testing.T) {
	h, srv := startHub(t, HubOptions{Compression: true, Logger: quietLogger})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	inflate := &benchInflater{}
	l, err := newBenchLoop()
	require.NoError(t, err)
	for range 2 {
		c, err := dialBench(ctx, wsURL(srv), inflate)
		require.NoError(t, err)
		require.Same(t, inflate, c.inflate, "permessage-deflate negotiated")
		require.NoError(t, l.add(c))
	}
	// Registered once the hub has taken them (after the 101 response):
	// an event published before would not reach them.
	testutil.Eventually(t, testTimeout, func() error {
		if n := h.Clients(); n != 2 {
			return fmt.Errorf("%d clients", n)
		}
		return nil
	})
	got := make(chan string, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.run(func(i int, op byte, p []byte) {
			if strings.HasPrefix(string(p), benchPrefix) {
				got <- string(p)
			}
		})
	}()
	stop := sync.OnceFunc(func() { l.shutdown(); <-done })
	defer stop()
	for seq := 1; seq <= 3; seq++ {
		msg := benchMessage(seq, time.Now().UnixNano())
		require.Len(t, msg, benchMsgSize)
		require.True(t, json.Valid(msg), "%s", msg)
		require.NoError(t, h.PublishRaw(TopicIncident, msg))
		for range 2 {
			select {
			case m := <-got:
				require.Equal(t, string(msg), m)
			case <-ctx.Done():
				t.Fatal("message not received")
			}
		}
	}
	assert.EqualValues(t, 3, h.deflates.Load())
	stop() // inflate is the loop's until it has ended
	assert.Equal(t, 3, inflate.inflated, "one decompression per message, not per client")
}
