package promflowtest_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/suite"

	"github.com/promflow/promflow/incidents"
	"github.com/promflow/promflow/promflowtest"
)

// pipelineRoutes is routesConfig with the incidents of service-metrics:
// every alert also goes to the "incidents" receiver (continue: true), and
// a last catch-all child sends what is not critical to "ticket".
const pipelineRoutes = `
route:
  receiver: ticket
  group_by: [alertname, service]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
  routes:
    - receiver: incidents
      continue: true
    - receiver: pager
      matchers: ['severity="critical"']
    - receiver: ticket
receivers:
  - name: incidents
    webhook_configs: [{url: "${SERVICE_METRICS_WEBHOOK}", send_resolved: true}]
  - name: pager
    webhook_configs: [{url: "${RECEIVER_URL}/pager", send_resolved: true}]
  - name: ticket
    webhook_configs: [{url: "${RECEIVER_URL}/ticket", send_resolved: true}]
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']
    equal: [service]
`

type chainSuite struct{ promflowtest.Suite }

func TestSuite(t *testing.T) {
	suite.Run(t, &chainSuite{Suite: promflowtest.Suite{Options: promflowtest.PipelineOptions{
		Rules:              checkoutRules,
		OmitShippedRules:   true,
		AlertmanagerConfig: pipelineRoutes,
	}}})
}

// TestAlertToIncident follows one alert through the whole chain: metric,
// rule, route to the pager, inhibition of the warning, incident in
// service-metrics, and back.
func (s *chainSuite) TestAlertToIncident() {
	s.Simulate("/simulate/service-up/checkout/0")
	s.RequireAlertFiring(promflowtest.Labels{"alertname": "CheckoutDown", "service": "checkout"})
	page := s.RequireNotification(func(n promflowtest.Notification) bool {
		return n.Path == "/pager" && n.HasAlert("firing", promflowtest.Labels{"alertname": "CheckoutDown"})
	})
	s.Equal("pager", page.Receiver)
	inc := s.RequireIncidentOpened("checkout")
	s.Equal("checkout is down", inc.Title)
	s.Equal("critical", inc.Severity)

	s.SetValue("mock_http_latency_seconds", map[string]string{"service": "checkout"}, 3)
	slow := s.RequireAlertmanagerAlert(promflowtest.Labels{"alertname": "CheckoutSlow"}, "suppressed")
	s.NotEmpty(slow.Status.InhibitedBy)
	for _, n := range s.Receiver.Notifications() {
		s.NotEqual("/ticket", n.Path, "inhibited alert notified: %s", n)
	}

	s.Simulate("/simulate/service-up/checkout/1")
	s.SetValue("mock_http_latency_seconds", map[string]string{"service": "checkout"}, 0.1)
	s.RequireAlertResolved(promflowtest.Labels{"alertname": "CheckoutDown"})
	resolved := s.RequireIncidentResolved(inc.ID)
	s.Equal(incidents.StatusResolved, resolved.Status)

	// A wait that gives up lists the incidents it saw.
	short, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := s.Pipeline.WaitIncidentOpened(short, "nobody")
	s.Require().ErrorIs(err, promflowtest.ErrWaitTimeout)
	s.Contains(err.Error(), inc.ID+` resolved source="checkout" "checkout is down"`)
}

// TestQueryAndTarget: the suite's Prometheus scrapes mock-metrics.
func (s *chainSuite) TestQueryAndTarget() {
	target := s.RequireTargetUp("mock-metrics")
	s.Equal(s.Pipeline.MockURL+"/metrics", target.ScrapeURL)
	v := s.RequireQuery(`mock_service_up{service="mock-service"}`, nil)
	s.Equal(1.0, float64(v[0].Value))
}
