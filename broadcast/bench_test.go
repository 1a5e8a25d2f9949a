//go:build linux

// BenchmarkFanout's client driver reads its connections from one epoll loop
// and the server side counts CPU with getrusage(2): Linux only (elsewhere
// bench_other_test.go skips the benchmark).

package broadcast

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// BenchmarkFanout measures one 2 KB publish reaching every connected client
// over loopback, for this package's Hub ("promflow"; "promflow_deflate" is
// the same with HubOptions.Compression and clients that offer
// permessage-deflate as Chromium does) and for the pattern of
// coder/websocket's chat example ("chat_pattern": one goroutine and a
// 16-message channel per client, CloseRead, each write with a 5 s timeout).
// A third, "syscall_floor" (floorServer), is no hub at all but one
// non-blocking send(2) per client of a frame prepared once: a reference
// for the kernel's share of a delivery, against which the other two are
// read (not a strict lower bound: run by run it varies like the others).
// Two more answer whether the hub's own framing earns its code:
// "promflow_portable" is the hub on the write path it uses off Linux
// (prepared frames through net.Conn.Write), and "conn_write"
// (connWriteServer) is floorServer's shape with coder/websocket's
// Conn.Write, the supported API, instead of send(2).
//
// The clients run in a child process (this test binary re-executed), so
// that bytes/client is the server side only: the heap in use plus goroutine
// stacks of this process per connected idle client, after GC. Latency is
// publish → received, over all deliveries, with wall clocks of the same
// machine. Each op publishes one message and waits until every client has it;
// every client must receive every message, in sequence, or the benchmark
// fails. The clients are a minimal RFC 6455 client (benchConn), read from
// one edge-triggered epoll loop in the child process (benchLoop), the same
// for both implementations: the driver shares the machine's CPUs with the
// server, and a full client library, or a goroutine per connection, costs
// about as much CPU per message as the server under test. Besides the
// latencies and bytes/client, each result reports the CPU time per publish
// of the server process (server-cpu-ms/op) and of the driver
// (driver-cpu-ms/op), and the bytes each client read from its socket per
// publish (wire-bytes/client/op). The message is JSON shaped like
// service-metrics' instant_metrics (Prometheus vectors: label sets and
// values), so that compression sees realistic input.
//
//	go test -run '^$' -bench BenchmarkFanout -benchtime 20x -count 1 ./broadcast
//
// BROADCAST_BENCH_WRITERS=n sets HubOptions.Writers for "promflow";
// BROADCAST_BENCH_DRIVER_CPUPROFILE=file writes a CPU profile of the driver;
// BROADCAST_BENCH_INPROCESS=1 runs the clients in this process instead
// (bytes/client then counts both ends; 10,000 clients need 21,000 file
// descriptors in one process).
func BenchmarkFanout(b *testing.B) {
	counts := []int{1000, 10000}
	impls := []struct {
		name    string
		new     func() fanoutServer
		deflate bool // clients offer permessage-deflate
	}{
		{"promflow", newPromflowServer, false},
		{"promflow_portable", newPromflowPortableServer, false},
		{"promflow_deflate", newPromflowDeflateServer, true},
		{"chat_pattern", newChatServer, false},
		{"syscall_floor", newFloorServer, false},
		{"conn_write", newConnWriteServer, false},
	}
	for _, impl := range impls {
		b.Run(impl.name, func(b *testing.B) {
			if impl.name == "syscall_floor" && !rawWrites {
				b.Skip("no raw send(2) on this architecture (linux/386)")
			}
			for _, n := range counts {
				var env *fanoutEnv
				b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) {
					if env == nil {
						env = newFanoutEnv(b, impl.new(), n, impl.deflate)
					}
					env.run(b)
				})
				if env != nil {
					env.close(b)
				}
			}
		})
	}
}

// fanoutServer is one implementation under benchmark.
type fanoutServer interface {
	http.Handler
	publish(msg []byte)
	clients() int
	shutdown()
}

type promflowServer struct{ *Hub }

var benchWriters, _ = strconv.Atoi(os.Getenv("BROADCAST_BENCH_WRITERS"))

func newPromflowServer() fanoutServer { return newPromflowHub(false) }

// newPromflowPortableServer is the hub on its portable write path (every
// frame through net.Conn.Write, as off Linux), on this machine.
func newPromflowPortableServer() fanoutServer {
	s := newPromflowHub(false).(promflowServer)
	s.portableWrites = true
	return s
}

// newPromflowDeflateServer is the hub with HubOptions.Compression.
func newPromflowDeflateServer() fanoutServer { return newPromflowHub(true) }

func newPromflowHub(compression bool) fanoutServer {
	h, err := NewHub(HubOptions{
		Topics:      []Topic{{Name: "bench", Kind: EventTopic}},
		MaxClients:  -1,
		Logger:      slog.New(slog.DiscardHandler),
		Writers:     benchWriters,
		Compression: compression,
	})
	if err != nil {
		panic(err)
	}
	return promflowServer{h}
}

func (s promflowServer) publish(msg []byte) {
	if err := s.PublishRaw("bench", msg); err != nil {
		panic(err)
	}
}
func (s promflowServer) clients() int { return s.Clients() }
func (s promflowServer) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_ = s.Shutdown(ctx)
}

// chatServer is the baseline: the fan-out of coder/websocket's chat
// example, re-written here.
type chatServer struct {
	mu          sync.Mutex
	subscribers map[*chatSubscriber]struct{}
	wg          sync.WaitGroup
}

type chatSubscriber struct {
	msgs      chan []byte
	closeSlow func()
}

func newChatServer() fanoutServer {
	return &chatServer{subscribers: map[*chatSubscriber]struct{}{}}
}

func (cs *chatServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	cs.wg.Add(1)
	defer cs.wg.Done()
	var mu sync.Mutex
	var conn *websocket.Conn
	closed := false
	s := &chatSubscriber{
		msgs: make(chan []byte, 16),
		closeSlow: func() {
			mu.Lock()
			defer mu.Unlock()
			closed = true
			if conn != nil {
				_ = conn.Close(websocket.StatusPolicyViolation, "connection too slow to keep up with messages")
			}
		},
	}
	cs.mu.Lock()
	cs.subscribers[s] = struct{}{}
	cs.mu.Unlock()
	defer func() {
		cs.mu.Lock()
		delete(cs.subscribers, s)
		cs.mu.Unlock()
	}()
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	mu.Lock()
	if closed {
		mu.Unlock()
		return
	}
	conn = c
	mu.Unlock()
	defer c.CloseNow()
	ctx := c.CloseRead(context.Background())
	for {
		select {
		case msg := <-s.msgs:
			wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := c.Write(wctx, websocket.MessageText, msg)
			cancel()
			if err != nil {
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

func (cs *chatServer) publish(msg []byte) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for s := range cs.subscribers {
		select {
		case s.msgs <- msg:
		default:
			go s.closeSlow()
		}
	}
}

func (cs *chatServer) clients() int {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return len(cs.subscribers)
}

func (cs *chatServer) shutdown() { cs.wg.Wait() }

// fanoutEnv is a server with n clients connected from a child process.
type fanoutEnv struct {
	srv        fanoutServer
	http       *httptest.Server
	n          int
	cmd        *exec.Cmd
	driverDone chan struct{}
	stdin      io.WriteCloser
	lines      chan string
	seq        int
	warm       bool
	perClient  float64
	deflate    bool // clients offer permessage-deflate
}

const (
	benchURLEnv     = "BROADCAST_BENCH_URL"
	benchClientsEnv = "BROADCAST_BENCH_CLIENTS"
	benchDeflateEnv = "BROADCAST_BENCH_DEFLATE" // "1": clients offer permessage-deflate
	// benchDriverProfileEnv names a file for a CPU profile of the client
	// driver (the child process), to see what the harness itself costs.
	benchDriverProfileEnv = "BROADCAST_BENCH_DRIVER_CPUPROFILE"
	benchMsgSize          = 2048
	benchPrefix           = `{"type":"bench","seq":"`
)

func newFanoutEnv(b *testing.B, srv fanoutServer, n int, deflate bool) *fanoutEnv {
	b.Helper()
	fds := n + 1000
	if benchInProcess {
		fds += n // both ends
	}
	if err := raiseFileLimit(uint64(fds)); err != nil {
		b.Skipf("need %d file descriptors: %v", fds, err)
	}
	e := &fanoutEnv{srv: srv, n: n, deflate: deflate, lines: make(chan string, 16)}
	e.http = httptest.NewServer(srv)

	before := serverMemory()
	url := "ws" + strings.TrimPrefix(e.http.URL, "http")
	if benchInProcess {
		// Clients in this process: bytes/client then counts both ends.
		inR, inW := io.Pipe()
		outR, outW := io.Pipe()
		e.stdin = inW
		e.driverDone = make(chan struct{})
		go func() {
			defer close(e.driverDone)
			driveClients(url, n, deflate, inR, outW)
			outW.Close()
			io.Copy(io.Discard, inR)
		}()
		go e.scan(outR)
	} else {
		e.startChild(b, url)
	}
	if line := e.expect(b, "ready", 2*time.Minute); line == "" {
		return e
	}
	deadline := time.Now().Add(time.Minute)
	for srv.clients() != n {
		if time.Now().After(deadline) {
			b.Fatalf("%d clients connected, want %d", srv.clients(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	settle()
	e.perClient = float64(serverMemory()-before) / float64(n)
	return e
}

// benchInProcess runs the benchmark clients in the benchmark's own process
// (BROADCAST_BENCH_INPROCESS=1) instead of a child process.
var benchInProcess = os.Getenv("BROADCAST_BENCH_INPROCESS") == "1"

func (e *fanoutEnv) scan(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		e.lines <- sc.Text()
	}
	close(e.lines)
}

// startChild starts the client driver as a child process.
func (e *fanoutEnv) startChild(b *testing.B, url string) {
	b.Helper()
	e.cmd = exec.Command(os.Args[0], "-test.run=^$")
	e.cmd.Env = append(os.Environ(), benchDriverEnv+"=1",
		benchURLEnv+"="+url, benchClientsEnv+"="+strconv.Itoa(e.n))
	if e.deflate {
		e.cmd.Env = append(e.cmd.Env, benchDeflateEnv+"=1")
	}
	e.cmd.Stderr = os.Stderr
	var err error
	if e.stdin, err = e.cmd.StdinPipe(); err != nil {
		b.Fatal(err)
	}
	stdout, err := e.cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := e.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	go e.scan(stdout)
}

// settle waits until the number of goroutines stops changing (writers of
// the connection messages gone).
func settle() {
	last := runtime.NumGoroutine()
	for stable := 0; stable < 5; {
		time.Sleep(20 * time.Millisecond)
		if g := runtime.NumGoroutine(); g == last {
			stable++
		} else {
			last, stable = g, 0
		}
	}
}

// serverMemory is heap in use plus goroutine stacks after a full GC.
func serverMemory() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse + ms.StackInuse
}

// expect waits for a line of the driver starting with prefix.
func (e *fanoutEnv) expect(b *testing.B, prefix string, timeout time.Duration) string {
	b.Helper()
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case line, ok := <-e.lines:
			if !ok {
				b.Fatalf("client driver exited while waiting for %q", prefix)
				return ""
			}
			if strings.HasPrefix(line, prefix) {
				return line
			}
		case <-t.C:
			b.Fatalf("client driver: no %q within %v", prefix, timeout)
			return ""
		}
	}
}

func (e *fanoutEnv) send(b *testing.B, cmd string) {
	b.Helper()
	if _, err := io.WriteString(e.stdin, cmd+"\n"); err != nil {
		b.Fatal(err)
	}
}

// benchWarmup is how many unmeasured publishes a new environment gets
// before its first measured op: the first fan-outs over fresh connections
// pay one-time costs (socket buffers and kernel memory first touched,
// goroutine stacks grown) in both implementations.
const benchWarmup = 10

func (e *fanoutEnv) run(b *testing.B) {
	if !e.warm {
		for range benchWarmup {
			e.publishOne(b)
		}
		e.warm = true
	}
	e.send(b, "reset")
	e.expect(b, "reset", time.Minute)
	serverCPU := processCPU()
	b.ResetTimer()
	for range b.N {
		e.publishOne(b)
	}
	b.StopTimer()
	serverCPU = processCPU() - serverCPU
	e.send(b, "report")
	var p50, p99, driverCPU float64
	var count, bad int
	var wire int64
	line := e.expect(b, "report", time.Minute)
	if _, err := fmt.Sscanf(line, "report %g %g %d %d %g %d", &p50, &p99, &count, &bad, &driverCPU, &wire); err != nil {
		b.Fatalf("driver report %q: %v", line, err)
	}
	if bad != 0 {
		b.Fatalf("%d benchmark messages malformed or out of sequence", bad)
	}
	if count != b.N*e.n {
		b.Fatalf("%d deliveries, want %d", count, b.N*e.n)
	}
	b.ReportMetric(p50, "p50-ms")
	b.ReportMetric(p99, "p99-ms")
	b.ReportMetric(e.perClient, "bytes/client")
	// CPU time per publish of the server process and of the client driver
	// (when it runs in a child process): where the two cores went.
	b.ReportMetric(serverCPU.Seconds()*1e3/float64(b.N), "server-cpu-ms/op")
	b.ReportMetric(float64(wire)/float64(b.N*e.n), "wire-bytes/client/op")
	if !benchInProcess {
		b.ReportMetric(driverCPU/float64(b.N), "driver-cpu-ms/op")
	}
}

func (e *fanoutEnv) close(b *testing.B) {
	if e.driverDone != nil {
		_, _ = io.WriteString(e.stdin, "quit\n")
		_ = e.stdin.Close()
		<-e.driverDone
		for range e.lines {
		}
	}
	if e.cmd != nil && e.cmd.Process != nil {
		_, _ = io.WriteString(e.stdin, "quit\n")
		_ = e.stdin.Close()
		done := make(chan error, 1)
		go func() { done <- e.cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(2 * time.Minute):
			_ = e.cmd.Process.Kill()
			<-done
		}
		for range e.lines {
		}
	}
	e.srv.shutdown()
	e.http.Close()
}

// publishOne publishes the next benchmark message and waits until every
// client has it.
func (e *fanoutEnv) publishOne(b *testing.B) {
	e.seq++
	e.srv.publish(benchMessage(e.seq, time.Now().UnixNano()))
	e.expect(b, "done "+strconv.Itoa(e.seq), time.Minute)
}

// benchMessage is benchmark message seq, sent at sent (UnixNano):
// benchMsgSize bytes of JSON, the sequence number and send time at fixed
// offsets after benchPrefix (where the driver reads them), then the
// vector of an instant_metrics query at poll seq, padded with white space
// to the exact size.
func benchMessage(seq int, sent int64) []byte {
	msg := fmt.Appendf(make([]byte, 0, benchMsgSize), `%s%010d","sent":"%019d","data":{"http_requests_total":{"resultType":"vector","result":[`,
		benchPrefix, seq, sent)
	const end = `]}}}`
	for i := 0; ; i++ {
		s := instantSeries(seq, i)
		if len(msg)+1+len(s)+len(end) > benchMsgSize {
			break
		}
		if i > 0 {
			msg = append(msg, ',')
		}
		msg = append(msg, s...)
	}
	msg = append(msg, end[:len(end)-1]...)
	msg = append(msg, strings.Repeat(" ", benchMsgSize-len(msg)-1)...)
	return append(msg, '}')
}

// raiseFileLimit makes sure the process may open at least n files.
func raiseFileLimit(n uint64) error {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return err
	}
	if rl.Cur >= n {
		return nil
	}
	rl.Cur = n
	if rl.Max < n {
		rl.Max = n
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return fmt.Errorf("raise RLIMIT_NOFILE to %d: %w", n, err)
	}
	return nil
}

// runBenchDriver is the child process of BenchmarkFanout: it connects the
// clients, records when each benchmark message arrives, and answers the
// commands "reset", "report" and "quit" on stdin.
func runBenchDriver() int {
	url := os.Getenv(benchURLEnv)
	n, err := strconv.Atoi(os.Getenv(benchClientsEnv))
	if err != nil || url == "" {
		fmt.Fprintln(os.Stderr, "bench driver: bad environment")
		return 2
	}
	if err := raiseFileLimit(uint64(n) + 1000); err != nil {
		fmt.Fprintln(os.Stderr, "bench driver:", err)
		return 2
	}
	if path := os.Getenv(benchDriverProfileEnv); path != "" {
		f, err := os.Create(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench driver:", err)
			return 2
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "bench driver:", err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}
	return driveClients(url, n, os.Getenv(benchDeflateEnv) == "1", os.Stdin, os.Stdout)
}

// driveClients connects n clients to url (offering permessage-deflate if
// deflate) and serves the driver protocol on in and out (see
// runBenchDriver).
func driveClients(url string, n int, deflate bool, in io.Reader, stdout io.Writer) int {
	out := bufio.NewWriter(stdout)
	var outMu sync.Mutex
	println := func(s string) {
		outMu.Lock()
		defer outMu.Unlock()
		out.WriteString(s + "\n")
		out.Flush()
	}

	type clientLat struct{ lat []int64 }
	lats := make([]clientLat, n)
	var counts [1 << 12]atomic.Int32
	conns := make([]*benchConn, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 100)
	var failed atomic.Int32
	// Connections are read by one loop: they share one inflater, used
	// from that loop's goroutine only.
	var inflate *benchInflater
	if deflate {
		inflate = &benchInflater{}
	}
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			var c *benchConn
			var err error
			for attempt := 0; ; attempt++ {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				c, err = dialBench(ctx, url, inflate)
				cancel()
				if err == nil {
					break
				}
				if attempt == 5 {
					fmt.Fprintln(os.Stderr, "bench driver: dial:", err)
					failed.Add(1)
					return
				}
				time.Sleep(time.Duration(attempt+1) * 50 * time.Millisecond)
			}
			conns[i] = c
		}()
	}
	wg.Wait()
	if failed.Load() > 0 {
		return 1
	}
	// bad counts benchmark messages that are malformed or out of sequence;
	// "report" includes it and the benchmark fails unless it is 0.
	var bad atomic.Int64
	next := make([]int, n) // expected sequence number per client
	for i := range next {
		next[i] = 1 // every client connects before the first publish
	}
	onMessage := func(i int, op byte, b []byte) {
		now := time.Now().UnixNano()
		if op != 1 || len(b) < len(benchPrefix) || string(b[:len(benchPrefix)]) != benchPrefix {
			return // the connection message, not one of ours
		}
		p := b[len(benchPrefix):]
		seq, ok1 := parseDigits(p, 0, 10)
		sent, ok2 := parseDigits(p, 20, 39)
		if !ok1 || !ok2 || len(b) != benchMsgSize || sent <= 0 || sent > now {
			if bad.Add(1) <= 5 {
				fmt.Fprintf(os.Stderr, "bench driver: client %d: malformed message %.60q\n", i, b)
			}
			return
		}
		if int(seq) != next[i] {
			if bad.Add(1) <= 5 {
				fmt.Fprintf(os.Stderr, "bench driver: client %d: message %d, want %d\n", i, seq, next[i])
			}
		}
		next[i] = int(seq) + 1
		lats[i].lat = append(lats[i].lat, now-sent)
		slot := &counts[seq%int64(len(counts))]
		if slot.Add(1) == int32(n) {
			slot.Store(0)
			println("done " + strconv.FormatInt(seq, 10))
		}
	}
	// One epoll loop reads every connection (two loops were slower for
	// both implementations: more context switches on two cores).
	loop, err := newBenchLoop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench driver:", err)
		return 1
	}
	for _, c := range conns {
		if err := loop.add(c); err != nil {
			fmt.Fprintln(os.Stderr, "bench driver:", err)
			return 1
		}
	}
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		loop.run(onMessage)
	}()
	stop := func() {
		loop.shutdown()
		<-readerDone
	}
	println("ready")

	var cpuAtReset time.Duration
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		switch sc.Text() {
		case "reset":
			cpuAtReset = processCPU()
			loop.read.Store(0)
			for i := range lats {
				lats[i].lat = lats[i].lat[:0]
			}
			println("reset")
		case "report":
			var all []int64
			for i := range lats {
				all = append(all, lats[i].lat...)
			}
			slices.Sort(all)
			q := func(f float64) float64 {
				if len(all) == 0 {
					return 0
				}
				return float64(all[min(len(all)-1, int(f*float64(len(all))))]) / 1e6
			}
			cpu := processCPU() - cpuAtReset
			println(fmt.Sprintf("report %g %g %d %d %g %d", q(0.50), q(0.99), len(all), bad.Load(), cpu.Seconds()*1e3, loop.read.Load()))
		case "quit":
			stop()
			return 0
		}
	}
	stop()
	return 0
}

// processCPU is the user plus system CPU time of this process so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// parseDigits parses the decimal digits p[from:to].
func parseDigits(p []byte, from, to int) (int64, bool) {
	if len(p) < to {
		return 0, false
	}
	var v int64
	for _, d := range p[from:to] {
		if d < '0' || d > '9' {
			return 0, false
		}
		v = v*10 + int64(d-'0')
	}
	return v, true
}
