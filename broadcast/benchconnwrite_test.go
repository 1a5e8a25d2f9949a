//go:build linux

package broadcast

import (
	"context"
	"net/http"

	"github.com/coder/websocket"
)

// connWriteServer is BenchmarkFanout's "conn_write": the fan-out at its
// cheapest through coder/websocket's supported API alone. Like
// floorServer it keeps no queue, never reads and sends no ping; publish
// calls websocket.Conn.Write for every client from GOMAXPROCS goroutines,
// the clients split between them in fixed shares. It answers whether the
// hub's prepared frames (written to the connection beneath
// coder/websocket) are worth their framing code: compare its
// server-cpu-ms/op with promflow's in the same run.
type connWriteServer struct {
	floorServer // its connection list, clients and shutdown; ws only
}

func newConnWriteServer() fanoutServer { return &connWriteServer{} }

func (s *connWriteServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	s.mu.Lock()
	s.conns = append(s.conns, floorConn{ws: c})
	s.mu.Unlock()
}

func (s *connWriteServer) publish(msg []byte) {
	s.each(func(fc floorConn) {
		_ = fc.ws.Write(context.Background(), websocket.MessageText, msg)
	})
}
