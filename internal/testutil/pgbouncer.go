package testutil

import (
	"bytes"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// PgBouncerOptions configures [PgBouncer]. The zero value works.
type PgBouncerOptions struct {
	// PoolMode is pgbouncer's pool_mode; default "transaction".
	PoolMode string
	// PoolSize is default_pool_size, the server connections per database
	// and user; default 4 (several, so that consecutive transactions of
	// one client land on different server connections).
	PoolSize int
}

// PgBouncer starts a pgbouncer process (Debian package pgbouncer) in front
// of the PostgreSQL database of dsn (a postgres:// URL; trust auth), on a
// free port of 127.0.0.1 with auth_type = trust, and returns the URL of the
// same database through pgbouncer, with dsn's query parameters. The process
// is stopped at cleanup. Without the binary the test skips (fails in CI).
// Run as root, pgbouncer switches to the user postgres (-u postgres).
func PgBouncer(t testing.TB, dsn string, opts PgBouncerOptions) string {
	t.Helper()
	bin, err := exec.LookPath("pgbouncer")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/pgbouncer"); serr != nil {
			SkipOrFail(t, "pgbouncer not found: install the Debian package pgbouncer")
			return ""
		}
		bin = "/usr/sbin/pgbouncer"
	}
	u, err := url.Parse(dsn)
	if err != nil || u.Host == "" || len(u.Path) < 2 {
		t.Fatalf("testutil: PgBouncer: want a postgres:// URL with a database, got %q", u.Redacted())
	}
	if opts.PoolMode == "" {
		opts.PoolMode = "transaction"
	}
	if opts.PoolSize <= 0 {
		opts.PoolSize = 4
	}
	port := FreePort(t)
	dir := pgbouncerDir(t, u, port, opts)
	args := []string{filepath.Join(dir, "pgbouncer.ini")}
	if os.Geteuid() == 0 { // pgbouncer refuses to run as root
		args = append([]string{"-u", "postgres"}, args...)
	}
	cmd := exec.Command(bin, args...)
	var log lockedBuffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatalf("testutil: start pgbouncer: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-exited:
			t.Fatalf("testutil: pgbouncer exited at start:\n%s", log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("testutil: pgbouncer not listening on %s after 10s:\n%s", addr, log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	out := *u
	out.Host = addr
	return out.String()
}

// pgbouncerDir writes pgbouncer.ini and the auth file into a fresh
// directory that the user postgres can read, removed at cleanup.
func pgbouncerDir(t testing.TB, u *url.URL, port int, opts PgBouncerOptions) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pgbouncer-")
	if err != nil {
		t.Fatalf("testutil: PgBouncer: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatalf("testutil: PgBouncer: %v", err)
	}
	user := u.User.Username()
	if user == "" {
		user = "postgres"
	}
	host, pgPort := u.Hostname(), u.Port()
	if pgPort == "" {
		pgPort = "5432"
	}
	db := strings.TrimPrefix(u.Path, "/")
	ini := fmt.Sprintf(`[databases]
%[1]s = host=%[2]s port=%[3]s dbname=%[1]s user=%[4]s

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %[5]d
unix_socket_dir =
auth_type = trust
auth_file = %[6]s
pool_mode = %[7]s
default_pool_size = %[8]d
max_client_conn = 500
ignore_startup_parameters = extra_float_digits
log_connections = 0
log_disconnections = 0
`, db, host, pgPort, user, port, filepath.Join(dir, "users.txt"), opts.PoolMode, opts.PoolSize)
	files := map[string]string{
		"pgbouncer.ini": ini,
		"users.txt":     strconv.Quote(user) + ` ""` + "\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatalf("testutil: PgBouncer: %v", err)
		}
	}
	return dir
}

// lockedBuffer is a bytes.Buffer safe for a process's concurrent writes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
