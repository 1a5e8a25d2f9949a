package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/internal/testutil"
	"github.com/promflow/promflow/promflowtest"
)

// TestRunListenDatabaseURL: LISTEN_DATABASE_URL is the connection the
// change feed LISTENs on; an unparsable one is a configuration error.
func TestRunListenDatabaseURL(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	bad := map[string]string{"LISTEN_DATABASE_URL": "postgres://u:secret@[::1"}
	err := run(context.Background(), []string{"-addr", "127.0.0.1:0"}, func(k string) string { return bad[k] }, log, nil)
	require.Error(t, err)
	assert.ErrorContains(t, err, "ListenURL")
	assert.NotContains(t, err.Error(), "secret")

	dsn := promflowtest.DatabaseURL(t)
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	q := u.Query()
	q.Set("application_name", "example-listener")
	u.RawQuery = q.Encode()
	prom := promflowtest.Prometheus(t, promflowtest.PrometheusOptions{})
	env := map[string]string{"PROMETHEUS_URL": prom.URL, "DATABASE_URL": dsn, "LISTEN_DATABASE_URL": u.String()}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0"}, func(k string) string { return env[k] }, log, ready)
	}()
	defer func() {
		cancel()
		assert.NoError(t, <-done)
	}()
	select {
	case <-ready:
	case err := <-done:
		done <- err
		t.Fatalf("run returned early: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("server did not start")
	}
	c, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	defer c.Close(context.Background())
	testutil.Eventually(t, 10*time.Second, func() error {
		var n int
		if err := c.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE application_name = 'example-listener' AND query ILIKE 'LISTEN%' AND datname = current_database()`).Scan(&n); err != nil || n != 1 {
			return fmt.Errorf("%d listeners named example-listener (%v)", n, err)
		}
		return nil
	})
}
