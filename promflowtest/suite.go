package promflowtest

import (
	"context"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/suite"

	"github.com/promflow/promflow/incidents"
	"github.com/promflow/promflow/mockexporter"
	"github.com/promflow/promflow/promquery"
)

// Suite is a testify suite base with one [Pipeline] per suite. Embed it,
// set Options (rules, Alertmanager routes) before suite.Run, and use the
// Require* helpers, which wait up to [DefaultWaitTimeout] and fail the
// current test with what they last saw:
//
//	type AlertsSuite struct{ promflowtest.Suite }
//
//	func TestAlerts(t *testing.T) {
//		suite.Run(t, &AlertsSuite{Suite: promflowtest.Suite{Options: promflowtest.PipelineOptions{Rules: myRules}}})
//	}
//
// The pipeline (and so mock values, alerts and incidents) is shared by the
// suite's tests; a test that changes values should set them back. A suite
// that defines its own SetupSuite must call s.Suite.SetupSuite() first.
type Suite struct {
	suite.Suite
	// Options configure the pipeline; [Pipeline]'s defaults fill the rest.
	Options PipelineOptions
	// Pipeline and Receiver (the pipeline's) are set by SetupSuite.
	Pipeline *RunningPipeline
	Receiver *ReceiverServer
}

// SetupSuite starts the pipeline; it is stopped when the suite ends.
func (s *Suite) SetupSuite() {
	s.Pipeline = Pipeline(s.T(), s.Options)
	s.Receiver = s.Pipeline.Receiver
}

// ctx bounds one wait of the current test.
func (s *Suite) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), DefaultWaitTimeout)
}

// Simulate posts a mock-metrics route such as "/simulate/cpu-usage/95".
func (s *Suite) Simulate(route string) {
	ctx, cancel := s.ctx()
	defer cancel()
	s.Require().NoError(s.Pipeline.Simulate(ctx, route))
}

// SetValue sets a simulated gauge of mock-metrics (labels left out take
// the family's defaults).
func (s *Suite) SetValue(metric string, labels map[string]string, v float64) {
	s.Require().NoError(s.Pipeline.Mock.SetValue(metric, mockexporter.Labels(labels), v))
}

// RequireQuery waits until the query has a vector satisfying cond (nil:
// any sample) and returns it.
func (s *Suite) RequireQuery(query string, cond func(model.Vector) bool) model.Vector {
	ctx, cancel := s.ctx()
	defer cancel()
	v, err := s.Pipeline.WaitQuery(ctx, query, cond)
	s.Require().NoError(err)
	return v
}

// RequireTargetUp waits until a target of the job (e.g. "mock-metrics")
// is up, reporting its last scrape error otherwise, and returns it.
func (s *Suite) RequireTargetUp(job string) promquery.ActiveTarget {
	ctx, cancel := s.ctx()
	defer cancel()
	target, err := s.Pipeline.Client.WaitTargetUp(ctx, job, "")
	s.Require().NoError(err)
	return target
}

// RequireAlertFiring waits until Prometheus fires an alert whose labels
// include match and returns it.
func (s *Suite) RequireAlertFiring(match Labels) promquery.Alert {
	ctx, cancel := s.ctx()
	defer cancel()
	a, err := s.Pipeline.WaitAlertFiring(ctx, match)
	s.Require().NoError(err)
	return a
}

// RequireAlertResolved waits until Prometheus has no active alert whose
// labels include match.
func (s *Suite) RequireAlertResolved(match Labels) {
	ctx, cancel := s.ctx()
	defer cancel()
	s.Require().NoError(s.Pipeline.WaitAlertResolved(ctx, match))
}

// RequireAlertmanagerAlert waits until Alertmanager holds an alert whose
// labels include match in the state ("active", "suppressed", "" for any).
func (s *Suite) RequireAlertmanagerAlert(match Labels, state string) AlertmanagerAlert {
	ctx, cancel := s.ctx()
	defer cancel()
	a, err := s.Pipeline.WaitAlertmanagerAlert(ctx, match, state)
	s.Require().NoError(err)
	return a
}

// RequireNotification waits until the Receiver has a notification for
// which match returns true (nil: any) and returns it.
func (s *Suite) RequireNotification(match func(Notification) bool) Notification {
	ctx, cancel := s.ctx()
	defer cancel()
	n, err := s.Receiver.WaitNotification(ctx, match)
	s.Require().NoError(err)
	return n
}

// RequireIncidentOpened waits until service-metrics has an open incident
// of the service and returns it.
func (s *Suite) RequireIncidentOpened(service string) incidents.Incident {
	ctx, cancel := s.ctx()
	defer cancel()
	inc, err := s.Pipeline.WaitIncidentOpened(ctx, service)
	s.Require().NoError(err)
	return inc
}

// RequireIncidentResolved waits until the incident id is resolved.
func (s *Suite) RequireIncidentResolved(id string) incidents.Incident {
	ctx, cancel := s.ctx()
	defer cancel()
	inc, err := s.Pipeline.WaitIncidentResolved(ctx, id)
	s.Require().NoError(err)
	return inc
}

var _ suite.SetupAllSuite = (*Suite)(nil)
