package promflowtest_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/promflow/promflow/internal/testutil"
)

// A throwaway PostgreSQL cluster (initdb + pg_ctl into a temporary
// directory, on a free loopback port) that a fault drill may stop and
// start. Its role and database have names of their own, so that a test
// can check no response body shows them.
const (
	drillRole = "promflow_drill_role"
	drillDB   = "promflow_drill_db"
)

type pgCluster struct {
	bin    string // directory of initdb, pg_ctl, postgres
	root   string
	port   int
	asUser string // run the binaries as this OS user (initdb refuses root)
}

// newPGCluster initializes a cluster, starts it and creates the drill
// database. Without the binaries the test skips (fails in CI). The
// cluster is stopped and removed at cleanup.
func newPGCluster(t *testing.T) *pgCluster {
	t.Helper()
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(found) == 0 {
		testutil.SkipOrFail(t, "initdb not found under /usr/lib/postgresql/*/bin: install the Debian package postgresql")
	}
	sort.Strings(found)
	c := &pgCluster{bin: filepath.Dir(found[len(found)-1]), port: testutil.FreePort(t)}
	root, err := os.MkdirTemp("", "promflow-pg-")
	if err != nil {
		t.Fatal(err)
	}
	c.root = root
	t.Cleanup(func() {
		_ = c.cmd("pg_ctl", "-D", c.data(), "-m", "immediate", "-w", "stop").Run()
		_ = os.RemoveAll(root)
	})
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			testutil.SkipOrFail(t, "running as root and no postgres OS user to run initdb as: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(root, uid, gid); err != nil {
			t.Fatal(err)
		}
		c.asUser = "postgres"
	}
	if out, err := c.cmd("initdb", "-D", c.data(), "-U", drillRole, "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	c.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.url("postgres"))
	if err != nil {
		t.Fatalf("connect to the drill cluster: %v", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+drillDB); err != nil {
		t.Fatalf("create database: %v", err)
	}
	return c
}

func (c *pgCluster) data() string { return filepath.Join(c.root, "data") }

func (c *pgCluster) cmd(name string, args ...string) *exec.Cmd {
	bin := filepath.Join(c.bin, name)
	if c.asUser != "" {
		return exec.Command("runuser", append([]string{"-u", c.asUser, "--", bin}, args...)...)
	}
	return exec.Command(bin, args...)
}

func (c *pgCluster) url(db string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", drillRole, c.port, db)
}

// URL is the drill database's connection URL.
func (c *pgCluster) URL() string { return c.url(drillDB) }

// Addr is the cluster's host:port.
func (c *pgCluster) Addr() string { return fmt.Sprintf("127.0.0.1:%d", c.port) }

// Start starts the cluster and waits until it accepts connections.
func (c *pgCluster) Start(t *testing.T) {
	t.Helper()
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off", c.port, c.root)
	out, err := c.cmd("pg_ctl", "-D", c.data(), "-l", filepath.Join(c.root, "log"), "-o", opts, "-w", "-t", "60", "start").CombinedOutput()
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(c.root, "log"))
		t.Fatalf("pg_ctl start: %v\n%s\n--- server log ---\n%s", err, out, log)
	}
}

// Stop stops the cluster (fast shutdown: clients are disconnected).
func (c *pgCluster) Stop(t *testing.T) {
	t.Helper()
	if out, err := c.cmd("pg_ctl", "-D", c.data(), "-m", "fast", "-w", "-t", "60", "stop").CombinedOutput(); err != nil {
		t.Fatalf("pg_ctl stop: %v\n%s", err, out)
	}
}
