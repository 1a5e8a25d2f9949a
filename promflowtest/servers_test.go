package promflowtest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/internal/testutil"
	"github.com/promflow/promflow/promflowtest"
)

func TestPostgresGivesOwnDatabase(t *testing.T) {
	a := promflowtest.Database(t)
	b := promflowtest.Database(t)
	var na, nb string
	require.NoError(t, a.QueryRow(context.Background(), "SELECT current_database()").Scan(&na))
	require.NoError(t, b.QueryRow(context.Background(), "SELECT current_database()").Scan(&nb))
	assert.NotEqual(t, na, nb)
	assert.True(t, strings.HasPrefix(na, "promflow_test_"))
}

func TestPrometheusAndRestart(t *testing.T) {
	p := promflowtest.Prometheus(t, promflowtest.PrometheusOptions{
		ScrapeConfigs: []promflowtest.ScrapeConfig{{JobName: "self"}},
	})
	get := func() error {
		resp, err := http.Get(p.URL + "/-/healthy")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
	require.NoError(t, get())
	url := p.URL
	require.NoError(t, p.Stop())
	require.Error(t, get())
	p.Restart()
	assert.Equal(t, url, p.URL)
	testutil.Eventually(t, 10*time.Second, get)
}

func TestAlertmanager(t *testing.T) {
	am := promflowtest.Alertmanager(t, promflowtest.AlertmanagerOptions{WebhookURL: "http://127.0.0.1:1/hook"})
	resp, err := http.Get(am.URL + "/api/v2/status")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	assert.Equal(t, 200, resp.StatusCode)
	assert.Contains(t, string(body), "127.0.0.1:1/hook")
}

func TestEventuallyPolls(t *testing.T) {
	n := 0
	testutil.Eventually(t, time.Second, func() error {
		n++
		if n < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	assert.Equal(t, 3, n)
}
