package harness_test

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/promflowtest"
)

// TestRules runs the promtool unit tests of rules.yml.
func TestRules(t *testing.T) {
	promflowtest.RuleTest(t, "rules_test.yml")
}

// TestCheckoutAlerting follows the checkout alerts through the whole chain:
// a simulated metric, the rules, Alertmanager's routes and inhibition, the
// receivers, and the incident in service-metrics.
func TestCheckoutAlerting(t *testing.T) {
	p := promflowtest.Pipeline(t, promflowtest.PipelineOptions{
		Rules:              readFile(t, "rules.yml"),
		OmitShippedRules:   true,
		AlertmanagerConfig: readFile(t, "alertmanager.yml"),
	})
	ctx := promflowtest.WaitContext(t)

	// Checkout goes down: the critical alert pages and opens an incident.
	require.NoError(t, p.Simulate(ctx, "/simulate/service-up/checkout/0"))
	page, err := p.Receiver.WaitNotification(ctx, firing("/pager", "CheckoutDown"))
	require.NoError(t, err)
	assert.Equal(t, "pager", page.Receiver)
	assert.Equal(t, "checkout", page.CommonLabels["service"])
	incident, err := p.WaitIncidentOpened(ctx, "checkout")
	require.NoError(t, err)
	assert.Equal(t, "checkout is down", incident.Title)

	// It is slow too: the warning is inhibited, so no ticket is opened.
	require.NoError(t, p.Simulate(ctx, "/simulate/http-latency/checkout/3"))
	slow, err := p.WaitAlertmanagerAlert(ctx, promflowtest.Labels{"alertname": "CheckoutSlow"}, "suppressed")
	require.NoError(t, err)
	assert.NotEmpty(t, slow.Status.InhibitedBy)
	for _, n := range p.Receiver.Notifications() {
		assert.NotEqual(t, "/ticket", n.Path, "inhibited, yet notified: %s", n)
	}

	// Checkout is back up: the incident resolves and the warning, no
	// longer inhibited, opens a ticket.
	require.NoError(t, p.Simulate(ctx, "/simulate/service-up/checkout/1"))
	_, err = p.WaitIncidentResolved(ctx, incident.ID)
	require.NoError(t, err)
	_, err = p.Receiver.WaitNotification(ctx, firing("/ticket", "CheckoutSlow"))
	require.NoError(t, err)
}

// firing matches a notification posted to path with alertname firing.
func firing(path, alertname string) func(promflowtest.Notification) bool {
	return func(n promflowtest.Notification) bool {
		return n.Path == path && n.HasAlert("firing", promflowtest.Labels{"alertname": alertname})
	}
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	require.NoError(t, err)
	return string(b)
}
