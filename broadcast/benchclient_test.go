package broadcast

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// benchConn is the WebSocket client end used by BenchmarkFanout's driver.
//
// It is a minimal RFC 6455 client: the opening handshake by hand on a
// net.Conn, then unmasked server frames read with a small parser from a
// bufio.Reader, pings answered with masked pongs and a close frame echoed.
// It exists because the driver shares the two cores with the server under
// test: a full client library spends about as much CPU per received message
// as the server spends sending it, which would measure the driver rather
// than the server. Both implementations under benchmark are driven by the
// same client, so the comparison stays fair.
type benchConn struct {
	nc  net.Conn
	br  *bufio.Reader
	msg []byte // payload of the current data message, reused
	ctl [125]byte
	out [2 + 4 + 125]byte // a control frame to send
}

// websocketGUID is the RFC 6455 constant of the Sec-WebSocket-Accept hash.
const websocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// dialBench opens a WebSocket connection to rawURL (ws://host/path).
func dialBench(ctx context.Context, rawURL string) (*benchConn, error) {
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
	c, err := handshake(nc, u)
	if err != nil {
		_ = nc.Close()
		return nil, fmt.Errorf("bench client: handshake: %w", err)
	}
	_ = nc.SetDeadline(time.Time{})
	return c, nil
}

func handshake(nc net.Conn, u *url.URL) (*benchConn, error) {
	var key [16]byte
	_, _ = rand.Read(key[:])
	k := base64.StdEncoding.EncodeToString(key[:])
	req := "GET " + u.RequestURI() + " HTTP/1.1\r\n" +
		"Host: " + u.Host + "\r\n" +
		"Upgrade: websocket\r\n" +
		"Connection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + k + "\r\n" +
		"Sec-WebSocket-Version: 13\r\n\r\n"
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
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); ext != "" {
		return nil, fmt.Errorf("unexpected extensions %q", ext)
	}
	return &benchConn{nc: nc, br: br}, nil
}

// errCloseFrame is returned by read when the server closed the connection
// with a close frame (which read has echoed).
var errCloseFrame = errors.New("bench client: close frame received")

// read returns the next data message: its opcode (1 text, 2 binary) and
// payload, valid until the next call. It answers pings and echoes a close
// frame (then returns errCloseFrame). It is not safe for concurrent use.
func (c *benchConn) read() (byte, []byte, error) {
	c.msg = c.msg[:0]
	var op byte
	for {
		b0, err := c.br.ReadByte()
		if err != nil {
			return 0, nil, err
		}
		b1, err := c.br.ReadByte()
		if err != nil {
			return 0, nil, err
		}
		if b0&0x70 != 0 {
			return 0, nil, fmt.Errorf("bench client: reserved bits set in frame header %#x", b0)
		}
		if b1&0x80 != 0 {
			return 0, nil, errors.New("bench client: masked frame from server")
		}
		fin, fop := b0&0x80 != 0, b0&0x0f
		n := uint64(b1 & 0x7f)
		switch n {
		case 126:
			var l [2]byte
			if _, err := io.ReadFull(c.br, l[:]); err != nil {
				return 0, nil, err
			}
			n = uint64(binary.BigEndian.Uint16(l[:]))
		case 127:
			var l [8]byte
			if _, err := io.ReadFull(c.br, l[:]); err != nil {
				return 0, nil, err
			}
			n = binary.BigEndian.Uint64(l[:])
		}
		if fop >= 8 { // control frame
			if n > 125 || !fin {
				return 0, nil, errors.New("bench client: invalid control frame")
			}
			p := c.ctl[:n]
			if _, err := io.ReadFull(c.br, p); err != nil {
				return 0, nil, err
			}
			switch fop {
			case 0x9: // ping
				if err := c.writeControl(0xA, p); err != nil {
					return 0, nil, err
				}
			case 0x8: // close: echo the status code, then stop
				if len(p) > 2 {
					p = p[:2]
				}
				_ = c.writeControl(0x8, p)
				return 0, nil, errCloseFrame
			}
			continue
		}
		switch {
		case fop == 0 && op == 0:
			return 0, nil, errors.New("bench client: continuation frame without a message")
		case fop != 0 && op != 0:
			return 0, nil, errors.New("bench client: new message inside a fragmented one")
		case fop != 0:
			op = fop
		}
		if n > 1<<20 || uint64(len(c.msg))+n > 1<<20 {
			return 0, nil, errors.New("bench client: message over 1 MiB")
		}
		start := len(c.msg)
		c.msg = append(c.msg, make([]byte, n)...)
		if _, err := io.ReadFull(c.br, c.msg[start:]); err != nil {
			return 0, nil, err
		}
		if fin {
			return op, c.msg, nil
		}
	}
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
	_, err := c.nc.Write(f)
	return err
}

// Close closes the connection without a close handshake.
func (c *benchConn) Close() error { return c.nc.Close() }

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
	c, err := dialBench(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"))
	require.NoError(t, err)
	defer c.Close()

	op, p, err := c.read()
	require.NoError(t, err)
	assert.Equal(t, byte(1), op)
	assert.Equal(t, "hello", string(p))

	op, p, err = c.read()
	require.NoError(t, err)
	assert.Equal(t, byte(1), op)
	assert.Equal(t, strings.Repeat("a", 200)+strings.Repeat("b", 70000), string(p))

	// The ping is answered inside read, which then returns at the close.
	_, _, err = c.read()
	require.ErrorIs(t, err, errCloseFrame)
	require.NoError(t, <-pinged)
	require.NoError(t, <-closed)
}
