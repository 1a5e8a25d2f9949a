package incidents_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/incidents"
	"github.com/promflow/promflow/internal/testutil"
	"github.com/promflow/promflow/promflowtest"
)

func nextEvent(t *testing.T, sub *incidents.Subscription) incidents.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ev, err := sub.Next(ctx)
	require.NoError(t, err)
	return ev
}

func TestChangeFeedAcrossPools(t *testing.T) {
	ctx := ctxT(t)
	dsn := promflowtest.DatabaseURL(t)
	poolA, err := pgxpool.New(ctx, dsn)
	require.NoError(t, err)
	defer poolA.Close()
	poolB, err := pgxpool.New(ctx, dsn)
	require.NoError(t, err)
	defer poolB.Close()
	require.NoError(t, incidents.Migrate(ctx, poolA))

	reader := incidents.NewStore(poolA, incidents.Options{Logger: quietLogger})
	writer := incidents.NewStore(poolB, incidents.Options{})
	sub, err := reader.Subscribe(ctx, incidents.SubscribeOptions{MinBackoff: 20 * time.Millisecond})
	require.NoError(t, err)
	defer sub.Close()

	in, err := writer.Open(ctx, incidents.NewIncident{Title: "cpu", Source: "api"})
	require.NoError(t, err)
	ev := nextEvent(t, sub)
	assert.Equal(t, incidents.EventOpened, ev.Kind)
	assert.Equal(t, in.ID, ev.ID)
	require.NotNil(t, ev.Incident)
	assert.Equal(t, "cpu", ev.Incident.Title)

	_, err = writer.Acknowledge(ctx, in.ID)
	require.NoError(t, err)
	ev = nextEvent(t, sub)
	assert.Equal(t, incidents.EventAcknowledged, ev.Kind)
	assert.Equal(t, incidents.StatusOpen, ev.PrevStatus)
	b, err := json.Marshal(ev)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"kind":"acknowledged"`)
	assert.Contains(t, string(b), `"incident":{"id":"`+in.ID+`"`)

	_, err = writer.Resolve(ctx, in.ID)
	require.NoError(t, err)
	assert.Equal(t, incidents.EventResolved, nextEvent(t, sub).Kind)
	_, err = writer.Reopen(ctx, in.ID)
	require.NoError(t, err)
	assert.Equal(t, incidents.EventReopened, nextEvent(t, sub).Kind)

	// Plain SQL from the other pool is announced too.
	_, err = poolB.Exec(ctx, "DELETE FROM incidents WHERE id = $1", in.ID)
	require.NoError(t, err)
	ev = nextEvent(t, sub)
	assert.Equal(t, incidents.EventDeleted, ev.Kind)
	assert.Nil(t, ev.Incident)

	// Kill the listener's connection: the subscriber reconnects, says so,
	// and later changes still arrive.
	var killed bool
	require.NoError(t, poolB.QueryRow(ctx, `SELECT bool_or(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = 'promflow-incidents-listener' AND datname = current_database()`).Scan(&killed))
	require.True(t, killed)
	ev = nextEvent(t, sub)
	assert.Equal(t, incidents.EventResync, ev.Kind)
	in2, err := writer.Open(ctx, incidents.NewIncident{Title: "after reconnect", Source: "db"})
	require.NoError(t, err)
	ev = nextEvent(t, sub)
	assert.Equal(t, incidents.EventOpened, ev.Kind)
	assert.Equal(t, in2.ID, ev.ID)

	// Close is idempotent and ends Next.
	require.NoError(t, sub.Close())
	require.NoError(t, sub.Close())
	_, err = sub.Next(ctx)
	assert.ErrorIs(t, err, incidents.ErrSubscriptionClosed)
}

func TestSubscribeUnavailable(t *testing.T) {
	pool, err := pgxpool.New(context.Background(), fmt.Sprintf("postgres://postgres@127.0.0.1:%d/x?sslmode=disable&connect_timeout=5", testutil.FreePort(t)))
	require.NoError(t, err)
	defer pool.Close()
	s := incidents.NewStore(pool, incidents.Options{})
	_, err = s.Subscribe(ctxT(t), incidents.SubscribeOptions{})
	assert.True(t, errors.Is(err, incidents.ErrUnavailable), "%v", err)
}
