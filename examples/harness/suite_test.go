package harness_test

// The README's "Use it in your tests" snippet, kept here so that it
// compiles and passes: a rule of its own, the default Alertmanager routes
// (everything to the suite's Receiver and to service-metrics).

import (
	"testing"

	"github.com/stretchr/testify/suite"

	"github.com/promflow/promflow/promflowtest"
)

const rules = `
groups:
  - name: checkout
    rules:
      - alert: CheckoutDown
        expr: mock_service_up{service="checkout"} == 0
        labels: {severity: critical}`

type AlertingSuite struct{ promflowtest.Suite }

func TestAlerting(t *testing.T) {
	suite.Run(t, &AlertingSuite{Suite: promflowtest.Suite{
		Options: promflowtest.PipelineOptions{Rules: rules, OmitShippedRules: true},
	}})
}

func (s *AlertingSuite) TestCheckoutDownNotifies() {
	s.Simulate("/simulate/service-up/checkout/0")
	s.RequireAlertFiring(promflowtest.Labels{"alertname": "CheckoutDown"})
	n := s.RequireNotification(func(n promflowtest.Notification) bool {
		return n.HasAlert("firing", promflowtest.Labels{"alertname": "CheckoutDown"})
	})
	s.Equal("critical", n.CommonLabels["severity"])
	s.Equal("checkout", s.RequireIncidentOpened("checkout").Source)
}
