package incidents_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/incidents"
)

var t0 = time.Date(2026, 2, 10, 5, 0, 0, 0, time.UTC)

func TestLifecycle(t *testing.T) {
	clk := newClock(t0)
	s, _ := newStore(t, incidents.Options{Now: clk.Now})
	ctx := ctxT(t)

	in, err := s.Open(ctx, incidents.NewIncident{Title: "disk full", Source: "db", Labels: map[string]string{"device": "sda"}})
	require.NoError(t, err)
	assert.Equal(t, incidents.StatusOpen, in.Status)
	assert.Equal(t, "warning", in.Severity)
	assert.Equal(t, t0, in.CreatedAt)
	assert.Equal(t, map[string]string{"device": "sda"}, in.Labels)
	assert.Nil(t, in.AcknowledgedAt)

	got, err := s.Get(ctx, in.ID)
	require.NoError(t, err)
	assert.Equal(t, in, got)

	// Reopening an open incident is a state error.
	_, err = s.Reopen(ctx, in.ID)
	var se *incidents.StateError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, incidents.ActionReopen, se.Action)
	assert.Equal(t, incidents.StatusOpen, se.From)
	assert.ErrorIs(t, err, incidents.ErrWrongState)

	clk.Advance(5*time.Minute + 30*time.Second)
	in, err = s.Acknowledge(ctx, in.ID)
	require.NoError(t, err)
	assert.Equal(t, incidents.StatusAcknowledged, in.Status)
	require.NotNil(t, in.AcknowledgedAt)
	firstAck := *in.AcknowledgedAt
	assert.Equal(t, t0.Add(330*time.Second), firstAck)

	_, err = s.Acknowledge(ctx, in.ID)
	require.ErrorAs(t, err, &se)
	assert.Equal(t, incidents.StatusAcknowledged, se.From)

	clk.Set(t0.Add(time.Hour + 15*time.Minute))
	in, err = s.Resolve(ctx, in.ID)
	require.NoError(t, err)
	assert.Equal(t, incidents.StatusResolved, in.Status)
	assert.Equal(t, t0.Add(4500*time.Second), *in.ResolvedAt)

	// The seed's example: 330 s to acknowledge, 4500 s to resolve.
	page, err := s.Details(ctx, incidents.DetailsQuery{})
	require.NoError(t, err)
	require.Len(t, page.Items, 1)
	require.NotNil(t, page.Items[0].MTTASeconds)
	assert.Equal(t, 330.0, *page.Items[0].MTTASeconds)
	assert.Equal(t, 4500.0, *page.Items[0].MTTRSeconds)

	// Resolving twice and acknowledging a resolved incident are state errors.
	_, err = s.Resolve(ctx, in.ID)
	require.ErrorAs(t, err, &se)
	assert.Equal(t, incidents.ActionResolve, se.Action)
	assert.Equal(t, incidents.StatusResolved, se.From)
	_, err = s.Acknowledge(ctx, in.ID)
	require.ErrorAs(t, err, &se)
	assert.Equal(t, incidents.StatusResolved, se.From)

	// Reopen keeps the first acknowledgement and clears the resolution.
	clk.Advance(time.Hour)
	in, err = s.Reopen(ctx, in.ID)
	require.NoError(t, err)
	assert.Equal(t, incidents.StatusOpen, in.Status)
	assert.Nil(t, in.ResolvedAt)
	assert.Equal(t, firstAck, *in.AcknowledgedAt)
	clk.Advance(time.Minute)
	in, err = s.Acknowledge(ctx, in.ID)
	require.NoError(t, err)
	assert.Equal(t, firstAck, *in.AcknowledgedAt, "second acknowledgement keeps the first time")
}

func TestLifecycleErrors(t *testing.T) {
	s, pool := newStore(t, incidents.Options{})
	ctx := ctxT(t)

	const unknown = "00000000-0000-4000-8000-000000000000"
	for name, f := range map[string]func() error{
		"get":         func() error { _, err := s.Get(ctx, unknown); return err },
		"acknowledge": func() error { _, err := s.Acknowledge(ctx, unknown); return err },
		"resolve":     func() error { _, err := s.Resolve(ctx, unknown); return err },
		"reopen":      func() error { _, err := s.Reopen(ctx, unknown); return err },
	} {
		assert.ErrorIs(t, f(), incidents.ErrNotFound, name)
	}
	for _, id := range []string{"", "nope", "00000000-0000-4000-8000-00000000000g", "00000000000040008000000000000000x", "'; DROP TABLE incidents; --"} {
		_, err := s.Acknowledge(ctx, id)
		assert.ErrorIs(t, err, incidents.ErrInvalid, "%q", id)
	}
	id, err := incidents.ParseID("0000000000004000800000000000ABCD")
	require.NoError(t, err)
	assert.Equal(t, "00000000-0000-4000-8000-00000000abcd", id)

	for _, n := range []incidents.NewIncident{
		{Title: "", Source: "a"},
		{Title: "x", Source: ""},
		{Title: "x", Source: "a\xff"},
		{Title: "x\x00", Source: "a"},
		{Title: "x", Source: string(make([]byte, 300))},
		{Title: "x", Source: "a", Labels: map[string]string{"": "v"}},
	} {
		_, err := s.Open(ctx, n)
		var ve *incidents.ValidationError
		assert.True(t, errors.As(err, &ve), "%+v: %v", n, err)
	}
	var count int
	require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM incidents").Scan(&count))
	assert.Zero(t, count, "rejected input wrote nothing")
}

// Concurrent callers cannot both win a transition: exactly one acknowledges,
// the others get a StateError; the same for concurrent webhook deliveries of
// one firing episode.
func TestTransitionsAtomic(t *testing.T) {
	s, pool := newStore(t, incidents.Options{})
	ctx := ctxT(t)
	in, err := s.Open(ctx, incidents.NewIncident{Title: "race", Source: "api"})
	require.NoError(t, err)

	const n = 20
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			_, err := s.Acknowledge(ctx, in.ID)
			errs <- err
		}()
	}
	wins := 0
	for i := 0; i < n; i++ {
		err := <-errs
		if err == nil {
			wins++
			continue
		}
		var se *incidents.StateError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, incidents.StatusAcknowledged, se.From)
	}
	assert.Equal(t, 1, wins)

	msg := incidents.WebhookMessage{Version: "4", Alerts: []incidents.WebhookAlert{
		{Status: "firing", Labels: map[string]string{"alertname": "A", "service": "api"}, StartsAt: t0, Fingerprint: "f1"},
	}}
	opened := make(chan int, n)
	for i := 0; i < n; i++ {
		go func() {
			res, err := s.Ingest(ctx, msg, incidents.IntakeOptions{})
			if err != nil {
				opened <- -1
				return
			}
			opened <- res.Opened
		}()
	}
	total := 0
	for i := 0; i < n; i++ {
		o := <-opened
		require.GreaterOrEqual(t, o, 0)
		total += o
	}
	assert.Equal(t, 1, total)
	var count int
	require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM incidents WHERE fingerprint = 'f1'").Scan(&count))
	assert.Equal(t, 1, count)
}

// Under concurrent transitions of one incident, a StateError always names a
// status that really forbids the action (never, say, "cannot resolve: it is
// open" because the status changed between the UPDATE and the look-up).
func TestStateErrorNamesForbiddingStatus(t *testing.T) {
	s, _ := newStore(t, incidents.Options{})
	ctx := ctxT(t)
	in, err := s.Open(ctx, incidents.NewIncident{Title: "flappy", Source: "api"})
	require.NoError(t, err)
	allowed := map[incidents.Action][]incidents.Status{
		incidents.ActionAcknowledge: {incidents.StatusOpen},
		incidents.ActionResolve:     {incidents.StatusOpen, incidents.StatusAcknowledged},
		incidents.ActionReopen:      {incidents.StatusResolved, incidents.StatusClosed},
	}
	rounds := 60
	if testing.Short() {
		rounds = 20
	}
	const perAction = 3
	errs := make(chan error, 3*perAction*rounds)
	for _, f := range []func(context.Context, string) (incidents.Incident, error){s.Acknowledge, s.Resolve, s.Reopen} {
		for g := 0; g < perAction; g++ {
			go func() {
				for i := 0; i < rounds; i++ {
					_, err := f(ctx, in.ID)
					errs <- err
				}
			}()
		}
	}
	for i := 0; i < 3*perAction*rounds; i++ {
		err := <-errs
		if err == nil {
			continue
		}
		var se *incidents.StateError
		require.ErrorAs(t, err, &se)
		assert.NotContains(t, allowed[se.Action], se.From, "%v", err)
	}
}
