package promflowtest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
)

// isLocalhost reports whether addr's host is the name "localhost", which
// clients resolve to 127.0.0.1 or ::1 (Node 18 and later prefer ::1).
func isLocalhost(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	return err == nil && strings.EqualFold(host, "localhost")
}

// listenAll listens on addr. For a "localhost" host it listens on both
// loopbacks, 127.0.0.1 and [::1], on the same port (the first listener's
// when the port is 0); a machine without IPv6 gets the IPv4 one only. Any
// other address is taken as given.
func listenAll(addr string) ([]net.Listener, error) {
	if !isLocalhost(addr) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, err
		}
		return []net.Listener{ln}, nil
	}
	_, port, _ := net.SplitHostPort(addr)
	v4, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", port))
	if err != nil {
		return nil, err
	}
	_, port, _ = net.SplitHostPort(v4.Addr().String())
	v6, err := net.Listen("tcp", net.JoinHostPort("::1", port))
	if err != nil {
		if noIPv6(err) {
			return []net.Listener{v4}, nil
		}
		v4.Close()
		return nil, err
	}
	return []net.Listener{v4, v6}, nil
}

// noIPv6 reports whether err says the machine has no IPv6 loopback.
func noIPv6(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && (strings.Contains(err.Error(), "cannot assign requested address") ||
		strings.Contains(err.Error(), "address family not supported"))
}

// loopbackIPv4 turns a "localhost:port" address into "127.0.0.1:port",
// where a child that listens on one address is started; others are
// returned as they are.
func loopbackIPv4(addr string) string {
	if !isLocalhost(addr) {
		return addr
	}
	_, port, _ := net.SplitHostPort(addr)
	return net.JoinHostPort("127.0.0.1", port)
}

// forwarder accepts on [::1]:port and copies each connection to and from
// 127.0.0.1:port: a child process that listens on the IPv4 loopback only
// is then reachable as localhost whichever address a client resolves.
type forwarder struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

// forwardIPv6 starts a forwarder for the child listening on v4addr (an
// IPv4 loopback address). It returns nil, nil where IPv6 is missing.
func forwardIPv6(v4addr string) (*forwarder, error) {
	_, port, err := net.SplitHostPort(v4addr)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("::1", port))
	if err != nil {
		if noIPv6(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("listen [::1]:%s: %w", port, err)
	}
	f := &forwarder{ln: ln, target: v4addr, conns: map[net.Conn]struct{}{}}
	f.wg.Add(1)
	go f.accept()
	return f, nil
}

func (f *forwarder) accept() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.wg.Add(1)
		go f.pipe(c)
	}
}

// track adds (or removes) connections to close on Close; adding reports
// false once Close has begun.
func (f *forwarder) track(add bool, cs ...net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if add && f.closed {
		return false
	}
	for _, c := range cs {
		if add {
			f.conns[c] = struct{}{}
		} else {
			delete(f.conns, c)
		}
	}
	return true
}

func (f *forwarder) pipe(c net.Conn) {
	defer f.wg.Done()
	defer c.Close()
	up, err := net.Dial("tcp", f.target)
	if err != nil {
		return
	}
	defer up.Close()
	if !f.track(true, c, up) {
		return
	}
	defer f.track(false, c, up)
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(up, c)
		if tc, ok := up.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		close(done)
	}()
	_, _ = io.Copy(c, up)
	_ = c.Close()
	<-done
}

// Close stops accepting, closes every forwarded connection and waits for
// the forwarder's goroutines.
func (f *forwarder) Close() error {
	err := f.ln.Close()
	f.mu.Lock()
	f.closed = true
	for c := range f.conns {
		_ = c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
	return err
}
