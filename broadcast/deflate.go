package broadcast

import (
	"bytes"
	"compress/flate"
	"net/http"
	"strings"
	"sync"
)

// permessage-deflate (RFC 7692), HubOptions.Compression.
//
// coder/websocket negotiates the extension (websocket.CompressionNoContextTakeover:
// its answer always carries server_no_context_takeover and
// client_no_context_takeover), decompresses what clients send, and writes
// its control frames, which are never compressed. The hub's data frames
// bypass it: for a client that negotiated the extension, the hub sends the
// message's compressed frame, built once per message (message.frameFor)
// and shared by every such client, as the plain frame is by the others.
// Without context takeover each message is compressed on its own, which
// is what makes one compressed frame right for every client.

// deflateMinPayload is the smallest payload the hub compresses: below it
// (acks, the connection message) a compressed frame saves a few bytes at
// most. coder/websocket's own threshold without context takeover is 512
// bytes, for a compression per client; the hub's is once per message.
const deflateMinPayload = 256

// deflateLevel is the compress/flate level of the hub's compressed frames.
// A message is compressed once for all its clients, so a level above
// BestSpeed costs little per delivery (docs/design.md, "Compression").
const deflateLevel = flate.DefaultCompression

// deflater is a compressor and its output buffer, reused through
// deflaters: a flate.Writer is several hundred kilobytes, too big to make
// per message.
type deflater struct {
	buf bytes.Buffer
	fw  *flate.Writer
}

var deflaters = sync.Pool{New: func() any {
	d := &deflater{}
	d.fw, _ = flate.NewWriter(&d.buf, deflateLevel) // a valid level never fails
	return d
}}

// deflateTail is the end of a sync flush (an empty stored block), which
// RFC 7692 section 7.2.1 removes from a compressed message.
const deflateTail = "\x00\x00\xff\xff"

// deflateFrame returns payload as one final text frame compressed for
// permessage-deflate (RSV1 set; the payload compressed on its own, with
// the trailing 0x00 0x00 0xff 0xff removed, RFC 7692 7.2.1), or nil if
// it does not get smaller.
func deflateFrame(payload []byte) []byte {
	d := deflaters.Get().(*deflater)
	defer func() {
		// Nothing of this message may reach the next one (no context
		// takeover): a writer goes back to the pool reset.
		d.buf.Reset()
		d.fw.Reset(&d.buf)
		deflaters.Put(d)
	}()
	_, err := d.fw.Write(payload) // writes to a bytes.Buffer do not fail
	if err == nil {
		err = d.fw.Flush()
	}
	z := d.buf.Bytes()
	if err != nil || !bytes.HasSuffix(z, []byte(deflateTail)) {
		return nil // not seen: Flush always ends with an empty stored block
	}
	z = z[:len(z)-len(deflateTail)]
	if len(z) >= len(payload) {
		return nil
	}
	f := appendFrameHeader(make([]byte, 0, 10+len(z)), 0x80|0x40|0x1, len(z)) // FIN, RSV1, text
	return append(f, z...)
}

// frameFor returns the frame to send to c: the compressed frame if c
// negotiated permessage-deflate and compressing m pays, else the plain
// one. The compressed frame is built once, by the first writer that needs
// it; writers that need it meanwhile wait for that one. Messages under
// deflateMinPayload are never compressed.
func (m *message) frameFor(c *client) []byte {
	if !c.deflate || len(framePayload(m.frame)) < deflateMinPayload {
		return m.frame
	}
	m.deflateOnce.Do(func() {
		m.deflated = deflateFrame(framePayload(m.frame))
		c.hub.deflates.Add(1)
	})
	if m.deflated == nil {
		return m.frame
	}
	return m.deflated
}

// negotiatedDeflate reports whether the upgrade response h accepted
// permessage-deflate.
func negotiatedDeflate(h http.Header) bool {
	for _, v := range h.Values("Sec-WebSocket-Extensions") {
		for _, ext := range strings.Split(v, ",") {
			name, _, _ := strings.Cut(ext, ";")
			if strings.EqualFold(strings.TrimSpace(name), "permessage-deflate") {
				return true
			}
		}
	}
	return false
}
