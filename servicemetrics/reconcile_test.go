package servicemetrics_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/incidents"
	"github.com/promflow/promflow/internal/testutil"
	"github.com/promflow/promflow/promflowtest"
	"github.com/promflow/promflow/servicemetrics"
)

// TestReconcileAtStart: an alert-backed incident left open while the
// service was down, whose alert Alertmanager no longer has, is resolved by
// reconciliation when service-metrics starts with AlertmanagerURL.
func TestReconcileAtStart(t *testing.T) {
	pool := promflowtest.Database(t)
	ctx := context.Background()
	require.NoError(t, incidents.Migrate(ctx, pool))
	store := incidents.NewStore(pool, incidents.Options{Logger: quietLogger})
	_, err := store.Ingest(ctx, incidents.WebhookMessage{Version: "4", Status: "firing", Alerts: []incidents.WebhookAlert{{
		Status: "firing", Labels: map[string]string{"alertname": "Gone", "service": "api"},
		StartsAt: time.Now().Add(-time.Hour), Fingerprint: "0123456789abcdef",
	}}}, incidents.IntakeOptions{})
	require.NoError(t, err)
	page, err := store.Details(ctx, incidents.DetailsQuery{Service: "api"})
	require.NoError(t, err)
	require.Len(t, page.Items, 1)
	open := page.Items

	am := promflowtest.Alertmanager(t, promflowtest.AlertmanagerOptions{WebhookURL: "http://127.0.0.1:1/none"})
	prom := promflowtest.Prometheus(t, promflowtest.PrometheusOptions{})
	svc, err := servicemetrics.New(ctx, servicemetrics.Config{
		PrometheusURL: prom.URL, Pool: pool, AlertmanagerURL: am.URL, Logger: quietLogger,
	})
	require.NoError(t, err)
	srv := httptest.NewServer(svc)
	t.Cleanup(func() { srv.Close(); _ = svc.Close() })

	testutil.Eventually(t, 30*time.Second, func() error {
		in, err := store.Get(ctx, open[0].ID)
		if err != nil {
			return err
		}
		if in.Status != "resolved" {
			return errors.New("still " + string(in.Status))
		}
		assert.Equal(t, incidents.ResolvedByReconciliation, in.ResolvedBy)
		return nil
	})
}
