package broadcast

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// FuzzClientMessage sends arbitrary text messages to the hub. Whatever the
// bytes, the hub must not panic, must either answer (ack, or error for a
// bad subscription) or close that client with 1007 (malformed) or 1009 (too
// big), and must leave a bystander client untouched.
//
//	go test -run '^$' -fuzz FuzzClientMessage -fuzztime 30s ./broadcast
func FuzzClientMessage(f *testing.F) {
	for _, s := range []string{
		`{"type":"ping"}`,
		`{"type":"getMetrics","payload":{"x":[1,2,{}]}}`,
		`{"type":"subscribe","topics":["incident"]}`,
		`{"type":"subscribe","topics":["incident","incident","instant_metrics"]}`,
		`{"type":"unsubscribe","topics":["range_metrics"]}`,
		`{"type":"subscribe","topics":["bogus"]}`,
		`{"type":"subscribe","topics":[""]}`,
		`{"type":"subscribe","topics":[]}`,
		`{"type":"subscribe"}`,
		`{"type":"subscribe","topics":"incident"}`,
		`{"type":"subscribe","topics":[1]}`,
		`{"type":5}`,
		`{"type":null}`,
		`{"type":""}`,
		`{"TYPE":"upper"}`,
		`{"type":"a","type":"b"}`,
		"{\"type\":\"\xff\xfe\"}",
		`{"type":"\u0000"}`,
		`{"type":"x"} trailing`,
		`null`, `[]`, `""`, `0`, ``, ` `, `{`,
		`{"type":"` + strings.Repeat("é", 300) + `"}`,
		strings.Repeat("[", 600),
	} {
		f.Add([]byte(s))
	}
	const limit = 512
	h := newHub(f, HubOptions{ReadLimit: limit, PingInterval: -1, Logger: quietLogger})
	srv := httptest.NewServer(h)
	f.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		assert.NoError(f, h.Shutdown(ctx))
		srv.Close()
	})
	bystander := dial(f, srv)
	readMsg(f, bystander)

	// One client serves input after input (its subscriptions change as the
	// inputs say) until an input gets it closed: a fresh connection per input
	// would run a long fuzzing session out of loopback ports.
	var c *websocket.Conn
	f.Cleanup(func() {
		if c != nil {
			_ = c.CloseNow()
		}
	})

	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 2*limit {
			data = data[:2*limit] // bigger says nothing more, and the peer may reset
		}
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if c == nil {
			var err error
			c, _, err = websocket.Dial(ctx, wsURL(srv), nil)
			require.NoError(t, err)
			c.SetReadLimit(-1)
			readMsg(t, c) // connection
		}
		require.NoError(t, c.Write(ctx, websocket.MessageText, data))

		var req clientRequest
		switch {
		case len(data) > limit:
			code, reason := readClose(t, c)
			assert.Equal(t, websocket.StatusMessageTooBig, code, "reason %q", reason)
			_ = c.CloseNow()
			c = nil
		case json.Unmarshal(data, &req) != nil || req.Type == "":
			code, reason := readClose(t, c)
			assert.Equal(t, websocket.StatusInvalidFramePayloadData, code, "reason %q", reason)
			assert.NotEmpty(t, reason, "a clear close reason")
			_ = c.CloseNow()
			c = nil
		default:
			m := readMsg(t, c)
			assert.Contains(t, []any{"ack", "error"}, m["type"])
			assert.Equal(t, req.Type, m["requestType"])
			if m["type"] == "error" {
				assert.Contains(t, []string{"subscribe", "unsubscribe"}, req.Type)
				assert.NotEmpty(t, m["error"])
			}
		}

		// The bystander is still served.
		send(t, bystander, `{"type":"still-here"}`)
		assert.Equal(t, "still-here", readMsg(t, bystander)["requestType"])
	})
}
