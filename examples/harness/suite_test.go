package harness_test

import (
	"testing"

	"github.com/stretchr/testify/suite"

	"github.com/promflow/promflow/promflowtest"
)

// AlertingSuite shares one pipeline, with this project's rules and routes,
// between its tests.
type AlertingSuite struct{ promflowtest.Suite }

func TestAlertingSuite(t *testing.T) {
	suite.Run(t, &AlertingSuite{Suite: promflowtest.Suite{Options: promflowtest.PipelineOptions{
		Rules:              readFile(t, "rules.yml"),
		OmitShippedRules:   true,
		AlertmanagerConfig: readFile(t, "alertmanager.yml"),
	}}})
}

func (s *AlertingSuite) TestCheckoutDownPages() {
	s.Simulate("/simulate/service-up/checkout/0")
	defer s.Simulate("/simulate/service-up/checkout/1")

	s.RequireAlertFiring(promflowtest.Labels{"alertname": "CheckoutDown", "service": "checkout"})
	n := s.RequireNotification(func(n promflowtest.Notification) bool {
		return n.Path == "/pager" && n.HasAlert("firing", promflowtest.Labels{"alertname": "CheckoutDown"})
	})
	s.Equal("pager", n.Receiver)
	s.Equal("critical", n.CommonLabels["severity"])
	s.Equal("checkout is down", s.RequireIncidentOpened("checkout").Title)
}
