package broadcast

import (
	"context"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSnapshotDelay covers both kinds of client of a hub with
// SnapshotDelay: one that reads the connection message and closes (as the
// original service's endpoint test does) sees nothing else, however long it
// takes to close within the delay; one that sends a message first gets its
// reply and then the latest snapshots at once; one that sends nothing gets
// them when the delay ends.
func TestSnapshotDelay(t *testing.T) {
	const delay = 400 * time.Millisecond
	h, srv := startHub(t, HubOptions{SnapshotDelay: delay, PingInterval: -1})
	require.NoError(t, h.PublishRaw(TopicInstantMetrics, []byte(`{"type":"instant_metrics","n":1}`)))

	// A client that only wants the welcome: nothing else is pending for
	// it before the delay, so it can close on its first message.
	quiet := dial(t, srv)
	assert.Equal(t, "connection", readMsg(t, quiet)["type"])
	ctx, cancel := context.WithTimeout(context.Background(), delay/4)
	_, _, err := quiet.Read(ctx)
	cancel()
	require.Error(t, err, "a message arrived before the snapshot delay ended")
	_ = quiet.Close(websocket.StatusNormalClosure, "")

	// A client that speaks first: reply, then the snapshot, well before
	// the delay.
	start := time.Now()
	talker := dial(t, srv)
	assert.Equal(t, "connection", readMsg(t, talker)["type"])
	send(t, talker, `{"type":"subscribe","channel":"metrics"}`)
	assert.Equal(t, "ack", readMsg(t, talker)["type"])
	m := readMsg(t, talker)
	assert.Equal(t, "instant_metrics", m["type"])
	assert.Equal(t, float64(1), m["n"])
	assert.Less(t, time.Since(start), delay, "the snapshot waited for the delay after the first message")
	send(t, talker, `{"type":"ping"}`)
	assert.Equal(t, "ack", readMsg(t, talker)["type"], "the snapshot is sent once")

	// A client that says nothing: the snapshot when the delay ends.
	start = time.Now()
	silent := dial(t, srv)
	assert.Equal(t, "connection", readMsg(t, silent)["type"])
	m = readMsg(t, silent)
	assert.Equal(t, "instant_metrics", m["type"])
	assert.GreaterOrEqual(t, time.Since(start), delay)

	// A subscription during the delay: each subscribed topic's snapshot
	// exactly once.
	sub := dial(t, srv)
	assert.Equal(t, "connection", readMsg(t, sub)["type"])
	send(t, sub, `{"type":"subscribe","topics":["instant_metrics"]}`)
	assert.Equal(t, "ack", readMsg(t, sub)["type"])
	assert.Equal(t, "instant_metrics", readMsg(t, sub)["type"])
	send(t, sub, `{"type":"ping"}`)
	assert.Equal(t, "ack", readMsg(t, sub)["type"], "the snapshot came twice")
}

// TestRetainAndResync: RetainRaw changes what new clients get without
// sending anything to connected ones; {"type":"resync"} brings a client
// the latest snapshots again, after its ack.
func TestRetainAndResync(t *testing.T) {
	h, srv := startHub(t, HubOptions{PingInterval: -1})
	c := dial(t, srv)
	assert.Equal(t, "connection", readMsg(t, c)["type"])

	require.NoError(t, h.RetainRaw(TopicRangeMetrics, []byte(`{"type":"range_metrics","n":1}`)))
	require.ErrorIs(t, h.RetainRaw(TopicIncident, []byte(`{}`)), ErrNotSnapshot)
	require.ErrorIs(t, h.RetainRaw("nope", []byte(`{}`)), ErrUnknownTopic)
	require.ErrorIs(t, h.RetainRaw(TopicRangeMetrics, []byte(`{`)), ErrInvalidMessage)
	// Nothing was sent: the next message c reads is this event.
	require.NoError(t, h.Publish(TopicIncident, map[string]any{"type": "incident", "n": 2}))
	assert.Equal(t, float64(2), readMsg(t, c)["n"])

	fresh := dial(t, srv)
	assert.Equal(t, "connection", readMsg(t, fresh)["type"])
	assert.Equal(t, float64(1), readMsg(t, fresh)["n"], "a new client gets the retained snapshot")

	send(t, c, `{"type":"resync"}`)
	m := readMsg(t, c)
	assert.Equal(t, "ack", m["type"])
	assert.Equal(t, "resync", m["requestType"])
	m = readMsg(t, c)
	assert.Equal(t, "range_metrics", m["type"])
	assert.Equal(t, float64(1), m["n"])
}
