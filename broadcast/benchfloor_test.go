//go:build linux

package broadcast

import (
	"net"
	"net/http"
	"runtime"
	"sync"
	"syscall"

	"github.com/coder/websocket"
)

// floorServer is BenchmarkFanout's "syscall_floor": not a hub, but a
// reference for what a fan-out of one message over these sockets costs the
// kernel alone, to show how far each implementation is from it.
// coder/websocket accepts the connection; after that the server never
// reads, keeps no queue, sends no ping and takes no lock per client:
// publish frames the message once and sends the frame to every socket with
// one non-blocking send(2) (the same writeNonblocking the hub uses) from
// GOMAXPROCS goroutines, the clients split between them in fixed shares,
// falling back to net.Conn.Write when a socket buffer is full. What is left
// is mostly the kernel's work per delivery, which every implementation
// pays on top of its own. It is a reference for the benchmark only: it has no flow control, no timeouts and no way to
// remove a client.
type floorServer struct {
	mu    sync.Mutex
	conns []floorConn
	wg    sync.WaitGroup // publishes in flight
}

type floorConn struct {
	ws *websocket.Conn
	nc net.Conn
	fd uintptr // nc's socket, open until shutdown closes ws
}

func newFloorServer() fanoutServer { return &floorServer{} }

func (s *floorServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hw := &hijackWriter{ResponseWriter: w}
	c, err := websocket.Accept(hw, r, nil)
	if err != nil {
		return
	}
	fc := floorConn{ws: c, nc: hw.fc.Conn}
	sc, ok := fc.nc.(syscall.Conn)
	if !ok {
		_ = c.CloseNow()
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		_ = c.CloseNow()
		return
	}
	_ = raw.Control(func(fd uintptr) { fc.fd = fd })
	s.mu.Lock()
	s.conns = append(s.conns, fc)
	s.mu.Unlock()
}

func (s *floorServer) publish(msg []byte) {
	frame := textFrame(msg)
	s.each(func(fc floorConn) {
		if p, errno := writeNonblocking(fc.fd, frame); errno == syscall.EAGAIN {
			_, _ = fc.nc.Write(p)
		}
	})
}

// each calls send for every connection from GOMAXPROCS goroutines, the
// connections split between them in fixed shares, and returns without
// waiting (shutdown waits).
func (s *floorServer) each(send func(floorConn)) {
	s.mu.Lock()
	conns := s.conns
	s.mu.Unlock()
	parts := runtime.GOMAXPROCS(0)
	for k := range parts {
		share := conns[k*len(conns)/parts : (k+1)*len(conns)/parts]
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			for _, fc := range share {
				send(fc)
			}
		}()
	}
}

func (s *floorServer) clients() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

func (s *floorServer) shutdown() {
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, fc := range s.conns {
		_ = fc.ws.CloseNow()
	}
	s.conns = nil
}
