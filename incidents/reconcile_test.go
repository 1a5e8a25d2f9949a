package incidents_test

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/incidents"
	"github.com/promflow/promflow/promflowtest"
)

func fingerprint(labels map[string]string) string {
	ls := model.LabelSet{}
	for k, v := range labels {
		ls[model.LabelName(k)] = model.LabelValue(v)
	}
	return ls.Fingerprint().String()
}

// An incident whose alert stopped firing while no notification reached the
// store is resolved by reconciling with a real Alertmanager's active alerts;
// the one still firing, incidents opened by hand and incidents newer than
// the alert list are left alone; a later firing notification of a
// reconciled episode reopens it.
func TestReconcileAlertmanager(t *testing.T) {
	clk := newClock(time.Now().UTC().Truncate(time.Second))
	s, pool := newStore(t, incidents.Options{Now: clk.Now})
	ctx := ctxT(t)
	am := promflowtest.Alertmanager(t, promflowtest.AlertmanagerOptions{})

	// Still firing in Alertmanager; its startsAt has nanoseconds, which
	// Alertmanager's API reports to the millisecond only.
	firingLabels := map[string]string{"alertname": "StillFiring", "service": "checkout"}
	firingStart := time.Now().UTC().Add(-time.Minute).Truncate(time.Microsecond).Add(789 * time.Nanosecond)
	pushAlert(t, am.URL, firingLabels, nil, firingStart, time.Now().Add(time.Hour))
	_, err := am.WaitAlert(ctx, promflowtest.Labels{"alertname": "StillFiring"}, "active")
	require.NoError(t, err)
	goneLabels := map[string]string{"alertname": "Gone", "service": "checkout"}
	goneStart := firingStart.Add(-time.Hour)

	in := func(labels map[string]string, start time.Time) incidents.WebhookAlert {
		return incidents.WebhookAlert{Status: "firing", Labels: labels, StartsAt: start, Fingerprint: fingerprint(labels)}
	}
	res, err := s.Ingest(ctx, message(in(firingLabels, firingStart), in(goneLabels, goneStart)), incidents.IntakeOptions{})
	require.NoError(t, err)
	require.Equal(t, 2, res.Opened)
	manual, err := s.Open(ctx, incidents.NewIncident{Title: "by hand", Source: "checkout"})
	require.NoError(t, err)
	var goneID, firingID string
	require.NoError(t, pool.QueryRow(ctx, "SELECT id::text FROM incidents WHERE fingerprint = $1", fingerprint(goneLabels)).Scan(&goneID))
	require.NoError(t, pool.QueryRow(ctx, "SELECT id::text FROM incidents WHERE fingerprint = $1", fingerprint(firingLabels)).Scan(&firingID))
	_, err = s.Acknowledge(ctx, goneID)
	require.NoError(t, err)

	// Alertmanager unreachable or answering an error: nothing changes.
	before := tableDigest(t, pool)
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	}))
	defer broken.Close()
	notJSON := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"not":"a list"}`))
	}))
	defer notJSON.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	deadURL := "http://" + ln.Addr().String()
	require.NoError(t, ln.Close())
	for _, u := range []string{broken.URL, notJSON.URL, deadURL, "ftp://x", "::"} {
		_, err := incidents.ReconcileAlertmanager(ctx, s, u, nil)
		require.ErrorIs(t, err, incidents.ErrAlertmanager, u)
	}
	assert.Equal(t, before, tableDigest(t, pool), "a failed reconciliation changes nothing")

	clk.Advance(5 * time.Minute)
	rec, err := incidents.ReconcileAlertmanager(ctx, s, am.URL, &http.Client{Timeout: 10 * time.Second})
	require.NoError(t, err)
	assert.Equal(t, 1, rec.Active)
	assert.Equal(t, []string{goneID}, rec.Resolved)

	gone, err := s.Get(ctx, goneID)
	require.NoError(t, err)
	assert.Equal(t, incidents.StatusResolved, gone.Status)
	require.NotNil(t, gone.ResolvedAt)
	assert.Equal(t, clk.Now(), *gone.ResolvedAt, "resolved at reconciliation time, server clock")
	assert.Equal(t, incidents.ResolvedByReconciliation, gone.ResolvedBy)
	assert.Equal(t, "resolved by reconciliation: alert no longer active in Alertmanager at "+incidents.FormatTime(clk.Now()), gone.ResolutionNote)
	assert.Nil(t, gone.AlertEndsAt, "Alertmanager's end is unknown")
	for _, id := range []string{firingID, manual.ID} {
		got, err := s.Get(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, incidents.StatusOpen, got.Status, id)
	}
	code, body := serve(t, s.Handler(), "GET", "/api/incidents/"+goneID, "")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, `"resolved_by":"reconciliation"`)

	// Reconciling again finds nothing to do.
	rec, err = incidents.ReconcileAlertmanager(ctx, s, am.URL, nil)
	require.NoError(t, err)
	assert.Empty(t, rec.Resolved)

	// The alert was active after all: its firing notification reopens the
	// incident. A resolved notification's incident is not reopened.
	clk.Advance(time.Minute)
	res, err = s.Ingest(ctx, message(in(goneLabels, goneStart)), incidents.IntakeOptions{})
	require.NoError(t, err)
	assert.Equal(t, incidents.IngestResult{Reopened: 1}, res)
	gone, err = s.Get(ctx, goneID)
	require.NoError(t, err)
	assert.Equal(t, incidents.StatusOpen, gone.Status)
	assert.Nil(t, gone.ResolvedAt)
	assert.Empty(t, gone.ResolvedBy)
	requireRollupsExact(t, pool)
}

// Store.Reconcile on its own: incidents created at or after asOf are left
// alone (their notification raced the alert list), bad keys are refused.
func TestReconcileAsOf(t *testing.T) {
	clk := newClock(t0)
	s, pool := newStore(t, incidents.Options{Now: clk.Now})
	ctx := ctxT(t)
	var fps []string
	for i := 0; i < 4; i++ {
		fp := fmt.Sprintf("fp-asof-%d", i)
		fps = append(fps, fp)
		_, err := s.Ingest(ctx, message(alert("firing", fp, t0.Add(-time.Hour), time.Time{})), incidents.IntakeOptions{})
		require.NoError(t, err)
		clk.Advance(time.Minute)
	}
	asOf := t0.Add(2 * time.Minute) // fp 0 and 1 are older
	before := tableDigest(t, pool)
	for _, bad := range [][]incidents.AlertKey{
		{{Fingerprint: "x\x00", StartsAt: t0}},
		{{Fingerprint: "x\xff", StartsAt: t0}},
		{{Fingerprint: "x", StartsAt: time.Date(20000, 1, 1, 0, 0, 0, 0, time.UTC)}},
		{{Fingerprint: "x"}},
	} {
		_, err := s.Reconcile(ctx, bad, asOf)
		require.ErrorIs(t, err, incidents.ErrInvalid)
	}
	assert.Equal(t, before, tableDigest(t, pool))
	res, err := s.Reconcile(ctx, []incidents.AlertKey{{Fingerprint: fps[1], StartsAt: t0.Add(-time.Hour)}}, asOf)
	require.NoError(t, err)
	require.Len(t, res.Resolved, 1)
	var fp string
	require.NoError(t, pool.QueryRow(ctx, "SELECT fingerprint FROM incidents WHERE id = $1", res.Resolved[0]).Scan(&fp))
	assert.Equal(t, fps[0], fp, "only the older incident whose alert is gone")
	requireRollupsExact(t, pool)
}
