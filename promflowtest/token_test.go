package promflowtest_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/promflowtest"
)

// TestPipelineWriteToken: with PipelineOptions.WriteToken the state-changing
// routes of both services need the token, and the alert loop still works
// (the generated Alertmanager configuration sends it with the webhook).
func TestPipelineWriteToken(t *testing.T) {
	const token = "s3cret-token"
	p := promflowtest.Pipeline(t, promflowtest.PipelineOptions{WriteToken: token})

	post := func(url, auth string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"title":"x","severity":"critical","source":"s"}`))
		req.Header.Set("Content-Type", "application/json")
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusUnauthorized, post(p.MockURL+"/simulate/cpu-usage/10", ""))
	assert.Equal(t, http.StatusUnauthorized, post(p.ServiceURL+"/api/incidents", ""))
	assert.Equal(t, http.StatusUnauthorized, post(p.ServiceURL+"/api/incidents", "wrong"))
	assert.Equal(t, http.StatusCreated, post(p.ServiceURL+"/api/incidents", token))

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	require.NoError(t, p.Simulate(ctx, "/simulate/memory-usage/95")) // sends the token
	in, err := p.WaitIncidentOpened(ctx, "mock-service")
	require.NoError(t, err, "Alertmanager's webhook must carry the token")
	assert.Equal(t, "mock-service", in.Source)
}
