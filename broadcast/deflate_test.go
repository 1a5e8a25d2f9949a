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
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// instantMetricsMessage is a realistic message of about size bytes: an
// instant_metrics snapshot of service-metrics (Prometheus vectors of
// several queries, label sets and sample values), its values varying with
// seq as a poll's do.
func instantMetricsMessage(seq, size int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"type":"instant_metrics","timestamp":"2026-12-01T21:%02d:%02d.000Z","data":{`, seq/60%60, seq%60)
	ts := 1764623500.0 + float64(seq)
	b.WriteString(`"prometheus_tsdb_head_series":{"resultType":"vector","result":[{"metric":{"__name__":"prometheus_tsdb_head_series","instance":"localhost:9090","job":"prometheus"},`)
	fmt.Fprintf(&b, `"value":[%.3f,"%d"]}]},"http_requests_total":{"resultType":"vector","result":[`, ts, 18000+seq*7%1000)
	for i := 0; b.Len() < size-200; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(instantSeries(seq, i))
	}
	b.WriteString(`]}}}`)
	return b.Bytes()
}

// instantSeries is the i-th sample of an http_requests_total vector at
// poll seq, as Prometheus encodes it.
func instantSeries(seq, i int) string {
	handlers := []string{"/api/v1/query", "/api/v1/query_range", "/api/v1/series", "/metrics", "/-/ready", "/api/v1/labels"}
	codes := []string{"200", "400", "503"}
	ts := 1764623500.0 + float64(seq)
	v := math.Floor(1e4 * (float64(i*131+seq*17%9973) + math.Sin(float64(seq+i))))
	return fmt.Sprintf(`{"metric":{"__name__":"http_requests_total","code":%q,"handler":%q,"instance":"mock-service-%d:8080","job":"mock"},"value":[%.3f,"%.0f"]}`,
		codes[i%len(codes)], handlers[i%len(handlers)], i%4, ts, v)
}

// countingConn counts the bytes read from a connection.
type countingConn struct {
	net.Conn
	read *atomic.Int64
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}

// dialMode connects a coder/websocket client offering compression mode
// (CompressionDisabled offers nothing) and counts the bytes it receives
// in *read. It returns the upgrade response too.
func dialMode(t *testing.T, srv *httptest.Server, mode websocket.CompressionMode, read *atomic.Int64) (*websocket.Conn, *http.Response) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		nc, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return countingConn{nc, read}, nil
	}}
	c, resp, err := websocket.Dial(ctx, wsURL(srv), &websocket.DialOptions{
		CompressionMode: mode,
		HTTPClient:      &http.Client{Transport: tr},
	})
	require.NoError(t, err)
	c.SetReadLimit(-1)
	t.Cleanup(func() { _ = c.CloseNow() })
	return c, resp
}

// TestCompression: with HubOptions.Compression, clients that offer
// permessage-deflate and clients that do not, on one hub, read the same
// messages; each message is compressed once whatever the number of
// clients that negotiated the extension; those clients receive fewer
// bytes; and the server decompresses what they send.
func TestCompression(t *testing.T) {
	forEachWritePath(t, func(t *testing.T, portable bool) {
		h, srv := startHubPath(t, HubOptions{Compression: true, Logger: quietLogger}, portable)
		const deflaters = 3
		var zread [deflaters]atomic.Int64
		var plainRead atomic.Int64
		var zc [deflaters]*websocket.Conn
		for i := range zc {
			var resp *http.Response
			zc[i], resp = dialMode(t, srv, websocket.CompressionNoContextTakeover, &zread[i])
			ext := resp.Header.Get("Sec-WebSocket-Extensions")
			assert.Contains(t, ext, "permessage-deflate")
			assert.Contains(t, ext, "server_no_context_takeover", "each message must be compressed on its own")
		}
		plain, resp := dialMode(t, srv, websocket.CompressionDisabled, &plainRead)
		assert.Empty(t, resp.Header.Values("Sec-WebSocket-Extensions"))
		all := append(zc[:], plain)
		for _, c := range all {
			assert.Equal(t, "connection", readMsg(t, c)["type"])
		}
		start := plainRead.Load()
		var zstart [deflaters]int64
		for i := range zread {
			zstart[i] = zread[i].Load()
		}

		const publishes = 5
		var sent int
		for seq := range publishes {
			msg := instantMetricsMessage(seq, 2048)
			sent += len(msg)
			require.NoError(t, h.PublishRaw(TopicIncident, msg))
			for _, c := range all {
				require.Equal(t, string(msg), readRaw(t, c))
			}
		}
		assert.EqualValues(t, publishes, h.deflates.Load(), "one compression per publish")

		plainBytes := plainRead.Load() - start
		assert.GreaterOrEqual(t, plainBytes, int64(sent))
		for i := range zread {
			z := zread[i].Load() - zstart[i]
			assert.Less(t, z, plainBytes/2, "client %d: %d bytes compressed, %d plain", i, z, plainBytes)
		}
		t.Logf("%d publishes of about 2 KB: %d bytes plain, %d compressed", publishes, plainBytes, zread[0].Load()-zstart[0])

		// A client's compressed message is decompressed (coder/websocket
		// compresses messages of 512 bytes or more).
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		big := `{"type":"hello","pad":"` + strings.Repeat("x", 1000) + `"}`
		require.NoError(t, zc[0].Write(ctx, websocket.MessageText, []byte(big)))
		m := readMsg(t, zc[0])
		assert.Equal(t, "ack", m["type"])
		assert.Equal(t, "hello", m["requestType"])
	})
}

// TestCompressionOffByDefault: without HubOptions.Compression nothing is
// negotiated, even with a client that offers it, and nothing is
// compressed.
func TestCompressionOffByDefault(t *testing.T) {
	h, srv := startHub(t, HubOptions{Logger: quietLogger})
	var read atomic.Int64
	c, resp := dialMode(t, srv, websocket.CompressionNoContextTakeover, &read)
	assert.Empty(t, resp.Header.Values("Sec-WebSocket-Extensions"))
	assert.Equal(t, "connection", readMsg(t, c)["type"])
	msg := instantMetricsMessage(1, 2048)
	require.NoError(t, h.PublishRaw(TopicIncident, msg))
	assert.Equal(t, string(msg), readRaw(t, c))
	assert.Zero(t, h.deflates.Load())
}

// TestCompressionOffers sends the permessage-deflate offers of real
// clients by hand and reads the frames as they are on the wire: a
// negotiated client gets large messages as RSV1 frames that inflate to
// the message (RFC 7692 7.2.1: raw DEFLATE, 0x00 0x00 0xff 0xff removed)
// and small ones uncompressed; an offer coder/websocket cannot honour is
// declined and its client gets plain frames.
func TestCompressionOffers(t *testing.T) {
	for _, tc := range []struct {
		name, offer string
		negotiated  bool
	}{
		{"chromium", "permessage-deflate; client_max_window_bits", true},
		{"firefox", "permessage-deflate", true},
		{"several offers", "permessage-deflate; server_max_window_bits=10, permessage-deflate; client_max_window_bits", true},
		{"small server window only", "permessage-deflate; server_max_window_bits=10", false},
		{"unknown extension", "x-webkit-deflate-frame", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, srv := startHub(t, HubOptions{Compression: true, Logger: quietLogger})
			rc, ext := dialOffer(t, srv, tc.offer)
			if !tc.negotiated {
				assert.Empty(t, ext)
			} else {
				assert.Equal(t, "permessage-deflate; client_no_context_takeover; server_no_context_takeover", ext)
			}
			rsv1, payload := rc.readFrame(t)
			assert.False(t, rsv1, "the connection message is too small to compress")
			assert.Contains(t, string(payload), `"connection"`)

			for seq := range 3 {
				msg := instantMetricsMessage(seq, 2048)
				require.NoError(t, h.PublishRaw(TopicIncident, msg))
				rsv1, payload := rc.readFrame(t)
				require.Equal(t, tc.negotiated, rsv1)
				if rsv1 {
					assert.Less(t, len(payload), len(msg)/2)
					assert.False(t, bytes.HasSuffix(payload, []byte(deflateTail)))
					payload = inflate(t, payload)
				}
				require.Equal(t, string(msg), string(payload))
			}
		})
	}
}

// rawClient is a hand-made WebSocket client that shows frames as sent.
type rawClient struct {
	nc net.Conn
	br *bufio.Reader
}

// dialOffer opens a WebSocket connection offering the extensions offer
// and returns it with the Sec-WebSocket-Extensions of the response.
func dialOffer(t *testing.T, srv *httptest.Server, offer string) (*rawClient, string) {
	t.Helper()
	nc, err := net.Dial("tcp", srv.Listener.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { _ = nc.Close() })
	require.NoError(t, nc.SetDeadline(time.Now().Add(testTimeout)))
	var key [16]byte
	_, _ = rand.Read(key[:])
	k := base64.StdEncoding.EncodeToString(key[:])
	_, err = fmt.Fprintf(nc, "GET / HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: %s\r\n\r\n",
		srv.Listener.Addr(), k, offer)
	require.NoError(t, err)
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	sum := sha1.Sum([]byte(k + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	require.Equal(t, base64.StdEncoding.EncodeToString(sum[:]), resp.Header.Get("Sec-WebSocket-Accept"))
	return &rawClient{nc: nc, br: br}, resp.Header.Get("Sec-WebSocket-Extensions")
}

// readFrame reads one server frame, which must be a whole text message.
func (c *rawClient) readFrame(t *testing.T) (rsv1 bool, payload []byte) {
	t.Helper()
	var hdr [2]byte
	_, err := io.ReadFull(c.br, hdr[:])
	require.NoError(t, err)
	require.Equal(t, byte(0x80|0x1), hdr[0]&^0x40, "a final text frame, RSV2 and RSV3 clear")
	require.Zero(t, hdr[1]&0x80, "server frames are not masked")
	n := uint64(hdr[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		_, err = io.ReadFull(c.br, b[:])
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		_, err = io.ReadFull(c.br, b[:])
		n = binary.BigEndian.Uint64(b[:])
	}
	require.NoError(t, err)
	payload = make([]byte, n)
	_, err = io.ReadFull(c.br, payload)
	require.NoError(t, err)
	return hdr[0]&0x40 != 0, payload
}

// inflate decompresses a permessage-deflate payload as RFC 7692 7.2.2
// says: the removed tail appended, raw DEFLATE, nothing carried over from
// an earlier message.
func inflate(t *testing.T, payload []byte) []byte {
	t.Helper()
	r := flate.NewReader(io.MultiReader(bytes.NewReader(payload), strings.NewReader(deflateTail)))
	out, err := io.ReadAll(r)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF, "the stream ends at a sync flush, not a final block")
	return out
}

// TestDeflateFrame checks deflateFrame's frames: header, RSV1, payload
// length by size class, and that an incompressible payload is left alone.
func TestDeflateFrame(t *testing.T) {
	for _, size := range []int{300, 2048, 70000, 200000} {
		msg := instantMetricsMessage(size, size)
		f := deflateFrame(msg)
		require.NotNil(t, f, "size %d", size)
		assert.Equal(t, byte(0xc1), f[0], "FIN, RSV1, text")
		p := framePayload(f)
		assert.Equal(t, string(msg), string(inflate(t, p)), "size %d", size)
	}
	random := make([]byte, 1000)
	_, _ = rand.Read(random)
	assert.Nil(t, deflateFrame(random), "incompressible")
}

// BenchmarkDeflateFrame is the hub's cost of compressing one 2 KB
// instant_metrics-like message (once per publish, whatever the number of
// clients).
func BenchmarkDeflateFrame(b *testing.B) {
	msg := instantMetricsMessage(1, 2048)
	var out int
	for b.Loop() {
		out = len(deflateFrame(msg))
	}
	b.ReportMetric(float64(out), "frame-bytes")
	b.ReportMetric(float64(len(msg)), "message-bytes")
}
