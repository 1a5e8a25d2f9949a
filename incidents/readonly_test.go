package incidents_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/incidents"
	"github.com/promflow/promflow/promflowtest"
)

// readOnlyRole creates a LOGIN role that is dropped when the test ends
// (after the test's databases, so its grants are gone by then). Call it
// before promflowtest.DatabaseURL.
func readOnlyRole(t *testing.T) string {
	t.Helper()
	base := os.Getenv("DATABASE_URL")
	if base == "" {
		base = promflowtest.DefaultDatabaseURL
	}
	ctx := ctxT(t)
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		promflowtest.SkipOrFail(t, "PostgreSQL not reachable: %v", err)
		return ""
	}
	defer admin.Close(context.Background())
	role := "promflow_ro_" + randomHex(6)
	_, err = admin.Exec(ctx, "CREATE ROLE "+pgx.Identifier{role}.Sanitize()+" LOGIN")
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Logf("drop role %s: %v", role, err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(ctx, "DROP ROLE IF EXISTS "+pgx.Identifier{role}.Sanitize()); err != nil {
			t.Logf("drop role %s: %v", role, err)
		}
	})
	return role
}

// poolAs opens a pool on dsn as another user (trust authentication).
func poolAs(t *testing.T, dsn, user string, params map[string]string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(dsn)
	require.NoError(t, err)
	cfg.ConnConfig.User = user
	for k, v := range params {
		cfg.ConnConfig.RuntimeParams[k] = v
	}
	cfg.MaxConns = 4
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

type errorBody struct {
	Status string `json:"status"`
	Error  string `json:"error"`
}

func requireReadOnly503(t *testing.T, code int, body string) {
	t.Helper()
	require.Equal(t, http.StatusServiceUnavailable, code, body)
	var e errorBody
	require.NoError(t, json.Unmarshal([]byte(body), &e), body)
	assert.Equal(t, "error", e.Status)
	assert.True(t, strings.HasPrefix(e.Error, "read-only: "), e.Error)
	assert.Contains(t, e.Error, "reads still work")
}

// TestReadOnlyRole: a role with SELECT only, on a migrated database:
// Migrate succeeds without writing, Writable says false, reads answer 200
// and writes 503 "read-only: ...", in read-only mode and without it.
func TestReadOnlyRole(t *testing.T) {
	role := readOnlyRole(t)
	dsn := promflowtest.DatabaseURL(t)
	owner := testPool(t, dsn)
	ctx := ctxT(t)
	require.NoError(t, incidents.Migrate(ctx, owner))
	ownerStore := incidents.NewStore(owner, incidents.Options{Logger: quietLogger})
	in, err := ownerStore.Open(ctx, incidents.NewIncident{Title: "seen by all", Source: "prometheus"})
	require.NoError(t, err)
	_, err = owner.Exec(ctx, "GRANT SELECT ON ALL TABLES IN SCHEMA public TO "+pgx.Identifier{role}.Sanitize())
	require.NoError(t, err)

	ro := poolAs(t, dsn, role, nil)
	var who string
	require.NoError(t, ro.QueryRow(ctx, "SELECT current_user").Scan(&who))
	require.Equal(t, role, who)
	require.NoError(t, incidents.Migrate(ctx, ro), "a current schema needs no write")
	w, err := incidents.Writable(ctx, ro)
	require.NoError(t, err)
	assert.False(t, w)
	w, err = incidents.Writable(ctx, owner)
	require.NoError(t, err)
	assert.True(t, w)

	s := incidents.NewStore(ro, incidents.Options{Logger: quietLogger})
	for _, opts := range []incidents.HandlerOptions{{ReadOnly: true}, {}} {
		opts.Logger = quietLogger
		h := incidents.NewHandler(s, opts)
		for _, p := range []string{"/api/metrics/incidents/by-service", "/api/metrics/incidents/details",
			"/api/metrics/incidents/stats", "/api/incidents/" + in.ID} {
			code, body := serve(t, h, "GET", p, "")
			assert.Equal(t, http.StatusOK, code, "%s %s", p, body)
		}
		code, body := serve(t, h, "GET", "/api/metrics/incidents/by-service", "")
		require.Equal(t, http.StatusOK, code)
		assert.Contains(t, body, `"service":"prometheus"`)
		for _, req := range [][2]string{
			{"/api/incidents", `{"title":"x","source":"a"}`},
			{"/api/incidents/" + in.ID + "/acknowledge", ""},
			{"/api/alertmanager/webhook", webhookBody("firing", "fp-ro", "prometheus")},
		} {
			code, body := serve(t, h, "POST", req[0], req[1])
			requireReadOnly503(t, code, body)
			if opts.ReadOnly {
				assert.Contains(t, body, "can only read", "read-only mode says why")
			} else {
				assert.Contains(t, body, "the database refused the write")
			}
		}
	}
	code, body := serve(t, incidents.NewWebhookHandler(s, incidents.IntakeOptions{ReadOnly: true}), "POST", "/", webhookBody("firing", "fp-ro", "x"))
	requireReadOnly503(t, code, body)
	_, err = s.Open(ctx, incidents.NewIncident{Title: "x", Source: "a"})
	assert.ErrorIs(t, err, incidents.ErrReadOnly)
	n, err := incidents.LoadDemo(ctx, ro)
	assert.ErrorIs(t, err, incidents.ErrReadOnly)
	assert.Zero(t, n)

	// A schema that is not current cannot be migrated by this role: a clear
	// error, matching ErrReadOnly.
	_, err = owner.Exec(ctx, "DELETE FROM incidents_schema_migrations WHERE version = $1", incidents.SchemaVersion())
	require.NoError(t, err)
	err = incidents.Migrate(ctx, ro)
	require.ErrorIs(t, err, incidents.ErrReadOnly)
	assert.Contains(t, err.Error(), "not current")
	t.Log(err)
	assert.Contains(t, err.Error(), "owner")
	require.NoError(t, incidents.Migrate(ctx, owner), "the owner re-applies the newest migration")
	require.NoError(t, incidents.Migrate(ctx, ro))
}

// TestReadOnlyEmptyDatabase: a read-only role on a database without the
// schema gets a clear error instead of "permission denied for schema public".
func TestReadOnlyEmptyDatabase(t *testing.T) {
	role := readOnlyRole(t)
	dsn := promflowtest.DatabaseURL(t)
	ro := poolAs(t, dsn, role, nil)
	err := incidents.Migrate(ctxT(t), ro)
	require.ErrorIs(t, err, incidents.ErrReadOnly)
	assert.Contains(t, err.Error(), "cannot change it")
	t.Log(err)
}

// TestReadOnlyTransactions: a role that could write, on a connection whose
// transactions are read-only (as on a standby): Writable says false and a
// write answers 503.
func TestReadOnlyTransactions(t *testing.T) {
	dsn := promflowtest.DatabaseURL(t)
	owner := testPool(t, dsn)
	require.NoError(t, incidents.Migrate(ctxT(t), owner))
	cfg, err := pgxpool.ParseConfig(dsn)
	require.NoError(t, err)
	roTx := poolAs(t, dsn, cfg.ConnConfig.User, map[string]string{"default_transaction_read_only": "on"})
	require.NoError(t, incidents.Migrate(ctxT(t), roTx))
	w, err := incidents.Writable(ctxT(t), roTx)
	require.NoError(t, err)
	assert.False(t, w)
	h := incidents.NewHandler(incidents.NewStore(roTx, incidents.Options{Logger: quietLogger}), incidents.HandlerOptions{Logger: quietLogger})
	code, body := serve(t, h, "POST", "/api/incidents", `{"title":"x","source":"a"}`)
	requireReadOnly503(t, code, body)
}
