package incidents_test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/incidents"
)

var (
	looksLikeTime = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T`)
	isoString     = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$`)
)

// checkTimes walks a decoded JSON value and requires every string that
// looks like a time to be in toISOString form; it returns how many it saw.
func checkTimes(t *testing.T, v any, path string) int {
	t.Helper()
	n := 0
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			n += checkTimes(t, e, path+"."+k)
		}
	case []any:
		for _, e := range x {
			n += checkTimes(t, e, path+"[]")
		}
	case string:
		if looksLikeTime.MatchString(x) {
			assert.Regexp(t, isoString, x, path)
			n++
		}
	}
	return n
}

func checkTimesJSON(t *testing.T, body string) int {
	t.Helper()
	var v any
	require.NoError(t, json.Unmarshal([]byte(body), &v), body)
	return checkTimes(t, v, "")
}

func TestTimeFormat(t *testing.T) {
	zone := time.FixedZone("CEST", 2*3600)
	created := time.Date(2026, 1, 2, 5, 4, 5, 0, zone)
	acked := time.Date(2026, 1, 2, 3, 5, 6, 123456789, time.UTC)
	b, err := json.Marshal(incidents.Incident{ID: "x", CreatedAt: created, UpdatedAt: created, AcknowledgedAt: &acked})
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	assert.Equal(t, "2026-01-02T03:04:05.000Z", m["created_at"])
	assert.Equal(t, "2026-01-02T03:04:05.000Z", m["updated_at"])
	assert.Equal(t, "2026-01-02T03:05:06.123Z", m["acknowledged_at"], "cut to milliseconds, as a JavaScript Date")
	assert.Nil(t, m["resolved_at"])
	assert.NotContains(t, m, "starts_at")
	assert.Equal(t, "2026-01-02T03:04:05.000Z", incidents.FormatTime(created))
	// Decoding the form gives the time back (to the millisecond).
	var back incidents.Incident
	require.NoError(t, json.Unmarshal(b, &back))
	assert.True(t, back.CreatedAt.Equal(created))
	assert.True(t, back.AcknowledgedAt.Equal(acked.Truncate(time.Millisecond)))
}

// TestTimeFormatREST: every time in every REST answer and in a change-feed
// event is in toISOString form.
func TestTimeFormatREST(t *testing.T) {
	clk := newClock(time.Date(2026, 3, 4, 5, 6, 7, 891234000, time.UTC))
	s, _ := newStore(t, incidents.Options{Now: clk.Now})
	ctx := ctxT(t)
	sub, err := s.Subscribe(ctx, incidents.SubscribeOptions{})
	require.NoError(t, err)
	defer sub.Close()
	h := incidents.NewHandler(s, incidents.HandlerOptions{Logger: quietLogger})
	seen := 0
	code, body := serve(t, h, "POST", "/api/incidents", `{"title":"t","source":"svc"}`)
	require.Equal(t, http.StatusCreated, code, body)
	seen += checkTimesJSON(t, body)
	var created struct {
		Data struct {
			ID        string `json:"id"`
			CreatedAt string `json:"created_at"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &created))
	assert.Equal(t, "2026-03-04T05:06:07.891Z", created.Data.CreatedAt)
	clk.Advance(90 * time.Second)
	code, body = serve(t, h, "POST", "/api/incidents/"+created.Data.ID+"/acknowledge", "")
	require.Equal(t, http.StatusOK, code, body)
	seen += checkTimesJSON(t, body)
	clk.Advance(time.Hour)
	code, body = serve(t, h, "POST", "/api/incidents/"+created.Data.ID+"/resolve", "")
	require.Equal(t, http.StatusOK, code, body)
	seen += checkTimesJSON(t, body)
	assert.Contains(t, body, `"resolved_at":"2026-03-04T06:07:37.891Z"`)
	code, body = serve(t, h, "POST", "/api/alertmanager/webhook", webhookBody("firing", "fp-time", "svc"))
	require.Equal(t, http.StatusOK, code, body)
	for _, p := range []string{
		"/api/incidents/" + created.Data.ID,
		"/api/metrics/incidents/details",
		"/api/metrics/incidents/stats?from=2026-03-01T00:00:00Z&to=2026-03-05T00:00:00.5Z",
	} {
		code, body := serve(t, h, "GET", p, "")
		require.Equal(t, http.StatusOK, code, body)
		seen += checkTimesJSON(t, body)
	}
	code, body = serve(t, h, "GET", "/api/metrics/incidents/stats?from=2026-03-01T00:00:00Z&to=2026-03-05T00:00:00.5Z", "")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, `"from":"2026-03-01T00:00:00.000Z"`)
	assert.Contains(t, body, `"to":"2026-03-05T00:00:00.500Z"`)
	assert.GreaterOrEqual(t, seen, 12)

	// The change feed's events carry the incident with the same form
	// (starts_at of the webhook's incident included).
	events := 0
	for events < 4 {
		ev := nextEvent(t, sub)
		if ev.Incident == nil {
			continue
		}
		b, err := json.Marshal(ev)
		require.NoError(t, err)
		assert.Positive(t, checkTimesJSON(t, string(b)))
		events++
	}
}
