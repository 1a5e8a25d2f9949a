package incidents_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/incidents"
	"github.com/promflow/promflow/internal/testutil"
	"github.com/promflow/promflow/promflowtest"
)

// pushAlert posts one alert to Alertmanager's API v2.
func pushAlert(t *testing.T, amURL string, labels, annotations map[string]string, startsAt, endsAt time.Time) {
	t.Helper()
	body, err := json.Marshal([]map[string]any{{
		"labels": labels, "annotations": annotations,
		"startsAt": startsAt.Format(time.RFC3339Nano), "endsAt": endsAt.Format(time.RFC3339Nano),
	}})
	require.NoError(t, err)
	resp, err := http.Post(amURL+"/api/v2/alerts", "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
}

func TestAlertmanagerIntake(t *testing.T) {
	s, pool := newStore(t, incidents.Options{})
	ctx := ctxT(t)

	// The real handler behind a real HTTP server; payloads are recorded so
	// that one can be replayed as a repeated notification.
	var (
		mu       sync.Mutex
		payloads [][]byte
	)
	h := s.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		payloads = append(payloads, b)
		mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(b))
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	am := promflowtest.Alertmanager(t, promflowtest.AlertmanagerOptions{WebhookURL: srv.URL + "/api/alertmanager/webhook"})

	labels := map[string]string{"alertname": "HighCPU", "service": "checkout", "severity": "critical", "instance": "mock-app-1"}
	annotations := map[string]string{"summary": "CPU above 90%", "description": "mock_high_cpu_usage_percent > 90 for 1m"}
	startsAt := time.Now().UTC().Add(-time.Minute).Truncate(time.Millisecond)
	pushAlert(t, am.URL, labels, annotations, startsAt, startsAt.Add(time.Hour))

	var in incidents.Incident
	testutil.Eventually(t, 30*time.Second, func() error {
		page, err := s.Details(ctx, incidents.DetailsQuery{})
		if err != nil {
			return err
		}
		if len(page.Items) != 1 {
			return fmt.Errorf("%d incidents", len(page.Items))
		}
		in, err = s.Get(ctx, page.Items[0].ID)
		return err
	})
	assert.Equal(t, "CPU above 90%", in.Title)
	assert.Equal(t, "critical", in.Severity)
	assert.Equal(t, "checkout", in.Source)
	assert.Equal(t, "mock_high_cpu_usage_percent > 90 for 1m", in.Description)
	assert.Equal(t, incidents.StatusOpen, in.Status)
	assert.Equal(t, "HighCPU", in.Labels["alertname"])
	assert.NotEmpty(t, in.Fingerprint)
	require.NotNil(t, in.StartsAt)
	assert.True(t, startsAt.Equal(*in.StartsAt), "%v != %v", startsAt, *in.StartsAt)

	// A repeated notification of the same firing episode opens nothing.
	mu.Lock()
	first := payloads[0]
	mu.Unlock()
	resp, err := http.Post(srv.URL+"/api/alertmanager/webhook", "application/json", bytes.NewReader(first))
	require.NoError(t, err)
	var out struct {
		Status string                 `json:"status"`
		Data   incidents.IngestResult `json:"data"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, incidents.IngestResult{}, out.Data)
	// Re-pushing the alert to Alertmanager does not duplicate either.
	pushAlert(t, am.URL, labels, annotations, startsAt, startsAt.Add(time.Hour))

	// Resolving the alert in Alertmanager resolves the incident.
	pushAlert(t, am.URL, labels, annotations, startsAt, time.Now().UTC())
	testutil.Eventually(t, 30*time.Second, func() error {
		got, err := s.Get(ctx, in.ID)
		if err != nil {
			return err
		}
		if got.Status != incidents.StatusResolved {
			return fmt.Errorf("status %s", got.Status)
		}
		return nil
	})
	var n int
	require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM incidents").Scan(&n))
	assert.Equal(t, 1, n, "one firing episode, one incident")

	// A new firing episode of the same alert opens a new incident.
	pushAlert(t, am.URL, labels, annotations, time.Now().UTC(), time.Now().UTC().Add(time.Hour))
	testutil.Eventually(t, 30*time.Second, func() error {
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM incidents WHERE status = 'open'").Scan(&n); err != nil {
			return err
		}
		if n != 1 {
			return fmt.Errorf("%d open incidents", n)
		}
		return nil
	})
	require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM incidents").Scan(&n))
	assert.Equal(t, 2, n)
}

func TestIngestMapping(t *testing.T) {
	s, _ := newStore(t, incidents.Options{})
	ctx := ctxT(t)
	start := time.Date(2026, 2, 10, 5, 0, 0, 0, time.UTC)
	msg := incidents.WebhookMessage{Version: "4", Status: "firing", Alerts: []incidents.WebhookAlert{
		{Status: "firing", Labels: map[string]string{"alertname": "DiskFull", "job": "node"}, StartsAt: start},
		{Status: "firing", Labels: map[string]string{"alertname": "X", "team": "payments", "sev": "page"}, Annotations: map[string]string{"headline": "Payments down"}, StartsAt: start, Fingerprint: "abc"},
		{Status: "resolved", Labels: map[string]string{"alertname": "Never"}, StartsAt: start, EndsAt: start.Add(time.Minute)},
	}}
	res, err := s.Ingest(ctx, msg, incidents.IntakeOptions{ServiceLabels: []string{"team", "job"}, TitleAnnotation: "headline", SeverityLabel: "sev"})
	require.NoError(t, err)
	// The resolved alert never seen firing is recorded as resolved (see
	// TestOutOfOrderResolve).
	assert.Equal(t, incidents.IngestResult{Opened: 2, ResolvedEarly: 1}, res)
	page, err := s.Details(ctx, incidents.DetailsQuery{Status: incidents.StatusOpen})
	require.NoError(t, err)
	require.Len(t, page.Items, 2)
	bySource := map[string]incidents.Detail{}
	for _, d := range page.Items {
		bySource[d.Source] = d
	}
	assert.Equal(t, "DiskFull", bySource["node"].Title, "title falls back to alertname")
	assert.Equal(t, "warning", bySource["node"].Severity)
	assert.Equal(t, "Payments down", bySource["payments"].Title)
	assert.Equal(t, "warning", bySource["payments"].Severity, "page is not a documented severity: the default")

	// Invalid messages change nothing.
	for _, bad := range []incidents.WebhookMessage{
		{Version: "3"},
		{Version: "4", Alerts: []incidents.WebhookAlert{{Status: "firing", StartsAt: start}, {Status: "weird", StartsAt: start}}},
		{Version: "4", Alerts: []incidents.WebhookAlert{{Status: "firing"}}},
	} {
		_, err := s.Ingest(ctx, bad, incidents.IntakeOptions{})
		assert.ErrorIs(t, err, incidents.ErrInvalid)
	}
	page, err = s.Details(ctx, incidents.DetailsQuery{})
	require.NoError(t, err)
	assert.Len(t, page.Items, 3)
}

// Concurrent webhook deliveries whose alerts span the same services in
// opposite orders neither deadlock nor lose an alert, and a redelivered
// message changes nothing.
func TestIngestConcurrentMessages(t *testing.T) {
	s, pool := newStore(t, incidents.Options{})
	ctx := ctxT(t)
	start := time.Date(2026, 2, 10, 5, 0, 0, 0, time.UTC)
	services := []string{"api", "db", "cache"}
	const writers, rounds = 4, 8
	msg := func(g, round int, status string) incidents.WebhookMessage {
		m := incidents.WebhookMessage{Version: "4"}
		for i := 0; i < 6; i++ {
			svc := services[i%len(services)]
			if g%2 == 1 {
				svc = services[len(services)-1-i%len(services)]
			}
			m.Alerts = append(m.Alerts, incidents.WebhookAlert{
				Status: status, StartsAt: start, EndsAt: start.Add(time.Minute),
				Labels:      map[string]string{"alertname": "A", "service": svc},
				Fingerprint: fmt.Sprintf("g%d-r%d-a%d", g, round, i),
			})
		}
		return m
	}
	var wg sync.WaitGroup
	errs := make(chan error, 3*writers*rounds)
	for g := 0; g < writers; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for r := 0; r < rounds; r++ {
				res, err := s.Ingest(ctx, msg(g, r, "firing"), incidents.IntakeOptions{})
				if err == nil && res.Opened != 6 {
					err = fmt.Errorf("opened %d, want 6", res.Opened)
				}
				errs <- err
				res, err = s.Ingest(ctx, msg(g, r, "firing"), incidents.IntakeOptions{})
				if err == nil && res.Opened != 0 {
					err = fmt.Errorf("redelivery opened %d", res.Opened)
				}
				errs <- err
				if r%2 == 0 {
					res, err = s.Ingest(ctx, msg(g, r, "resolved"), incidents.IntakeOptions{})
					if err == nil && res.Resolved != 6 {
						err = fmt.Errorf("resolved %d, want 6", res.Resolved)
					}
					errs <- err
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	var total, resolved int
	require.NoError(t, pool.QueryRow(ctx, "SELECT count(*), count(*) FILTER (WHERE status = 'resolved') FROM incidents").Scan(&total, &resolved))
	assert.Equal(t, writers*rounds*6, total)
	assert.Equal(t, writers*rounds/2*6, resolved)
	requireRollupsExact(t, pool)
}
