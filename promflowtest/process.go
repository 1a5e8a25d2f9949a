package promflowtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"time"
)

// ErrBinaryNotFound reports that a server binary is not installed. The
// wrapping *MissingBinaryError names the Debian package that provides it.
var ErrBinaryNotFound = errors.New("promflowtest: binary not found")

// MissingBinaryError names a binary that is absent and the Debian package
// that provides it.
type MissingBinaryError struct {
	Binary  string
	Package string
}

func (e *MissingBinaryError) Error() string {
	return fmt.Sprintf("%s not found in PATH: install the Debian package %q (apt-get install %s)", e.Binary, e.Package, e.Package)
}

// Unwrap makes errors.Is(err, ErrBinaryNotFound) true.
func (e *MissingBinaryError) Unwrap() error { return ErrBinaryNotFound }

// LookBinary finds name in PATH, or returns a *MissingBinaryError naming pkg.
func LookBinary(name, pkg string) (string, error) {
	p, err := exec.LookPath(name)
	if err != nil {
		return "", &MissingBinaryError{Binary: name, Package: pkg}
	}
	return p, nil
}

// ErrAddrInUse reports that the address a server was to listen on is taken,
// typically by the same server already running (Debian starts its
// prometheus and prometheus-alertmanager services on :9090 and :9093).
// Without this check a server answering on that address would be taken for
// the child, which exits at once.
var ErrAddrInUse = errors.New("promflowtest: address already in use")

// Process is a running server started by this package.
type Process struct {
	// Name is a short label such as "prometheus", used in errors.
	Name string
	// URL is the base URL of the server, e.g. http://127.0.0.1:9090.
	URL string
	// Addr is the host:port the server listens on.
	Addr string

	cmd      *exec.Cmd
	log      *syncBuffer
	done     chan struct{}
	waitErr  error
	stopOnce sync.Once
	stopErr  error
}

// Log returns everything the process wrote to stdout and stderr so far.
func (p *Process) Log() string { return p.log.String() }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Stop asks the process to end (SIGTERM; on Windows, which has no SIGTERM,
// it kills the process at once), waits up to 10 s, then kills it. It is
// idempotent.
func (p *Process) Stop() error {
	p.stopOnce.Do(func() {
		select {
		case <-p.done:
			return
		default:
		}
		_ = terminate(p.cmd.Process)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
			p.stopErr = fmt.Errorf("promflowtest: %s did not stop within 10s and was killed", p.Name)
		}
	})
	return p.stopErr
}

// Kill kills the process at once (SIGKILL on Unix), as a crash would, and
// waits until it has exited; for fault drills. Use Stop to end it cleanly.
func (p *Process) Kill() error {
	select {
	case <-p.done:
		return nil
	default:
	}
	err := p.cmd.Process.Kill()
	<-p.done
	if errors.Is(err, os.ErrProcessDone) {
		err = nil
	}
	return err
}

// exitInfo says how the process ended and what it wrote last.
func (p *Process) exitInfo() string {
	log := p.Log()
	if len(log) > 2000 {
		log = "…" + log[len(log)-2000:]
	}
	return fmt.Sprintf("%v; log tail:\n%s", p.waitErr, log)
}

func start(ctx context.Context, name, binary string, args []string, addr, readyPath string) (*Process, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%w: %s cannot listen on %s (%v); stop whatever serves it (Debian's own %s service: systemctl disable --now %s) or choose another address",
			ErrAddrInUse, name, addr, err, name, debianService(name))
	}
	_ = ln.Close()
	cmd := exec.Command(binary, args...)
	buf := &syncBuffer{}
	cmd.Stdout = buf
	cmd.Stderr = buf
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("promflowtest: start %s: %w", name, err)
	}
	p := &Process{Name: name, URL: "http://" + addr, Addr: addr, cmd: cmd, log: buf, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	if err := waitReady(ctx, p, p.URL+readyPath); err != nil {
		_ = p.Stop()
		return nil, fmt.Errorf("%w\n--- %s log ---\n%s", err, name, p.Log())
	}
	return p, nil
}

func waitReady(ctx context.Context, p *Process, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				// Only ours if it is still running: a child that failed to
				// bind while something else took the address exits.
				select {
				case <-p.done:
					return fmt.Errorf("promflowtest: %s exited (%v) while %s answered: %w", p.Name, p.waitErr, url, ErrAddrInUse)
				default:
					return nil
				}
			}
		}
		select {
		case <-p.done:
			return fmt.Errorf("promflowtest: %s exited before it was ready: %v", p.Name, p.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("promflowtest: %s not ready at %s: %w", p.Name, url, ctx.Err())
		case <-tick.C:
		}
	}
}

// debianService is the systemd unit of Debian's package for a server name.
func debianService(name string) string {
	if name == "alertmanager" {
		return "prometheus-alertmanager"
	}
	return name
}

// FreeAddr returns a loopback host:port that was free a moment ago.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("promflowtest: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	// Keep the log bounded: servers can run for a long time.
	if b.buf.Len() > 4<<20 {
		b.buf.Reset()
		b.buf.WriteString("[log truncated]\n")
	}
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
