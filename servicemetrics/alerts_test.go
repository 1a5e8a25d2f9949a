package servicemetrics_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/internal/testutil"
	"github.com/promflow/promflow/mockexporter"
	"github.com/promflow/promflow/promflowtest"
	"github.com/promflow/promflow/promquery"
	"github.com/promflow/promflow/servicemetrics"
)

// lastPublisher keeps the last message published per topic.
type lastPublisher struct {
	mu    sync.Mutex
	last  map[string][]byte
	count map[string]int
}

func (p *lastPublisher) PublishRaw(topic string, b []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.last == nil {
		p.last = map[string][]byte{}
	}
	p.last[topic] = b
	if p.count == nil {
		p.count = map[string]int{}
	}
	p.count[topic]++
	return nil
}

func (p *lastPublisher) published(topic string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.count[topic]
}

func (p *lastPublisher) RetainRaw(topic string, b []byte) error { return p.PublishRaw(topic, b) }

func (p *lastPublisher) alerts(t *testing.T) servicemetrics.AlertsMessage {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	var m servicemetrics.AlertsMessage
	require.NotNil(t, p.last[servicemetrics.TopicAlerts], "nothing published")
	require.NoError(t, json.Unmarshal(p.last[servicemetrics.TopicAlerts], &m))
	return m
}

const diskRules = `groups:
  - name: disk
    rules:
      - alert: DiskUsageHigh
        expr: mock_disk_usage_percent > 90
        labels: {severity: warning, service: storage}
      - alert: DiskRateOdd
        expr: rate(mock_disk_read_errors_total[1m]) > 1
`

// TestAlertsPollerAgainstPrometheus: a real Prometheus scrapes the
// mockexporter and evaluates a disk rule; the poller publishes the firing
// alert for sda only (sdb is below the threshold), linked to its incident
// by the labels' fingerprint, and the rule's threshold; the rule that is
// not a simple comparison has none. When Prometheus stops, the message
// says so and keeps the thresholds.
func TestAlertsPollerAgainstPrometheus(t *testing.T) {
	mock := promflowtest.MockExporter(t, mockexporter.Options{DisableRuntimeCollectors: true})
	for _, path := range []string{"/simulate/disk-usage/sda/96", "/simulate/disk-usage/sdb/60"} {
		resp, err := http.Post(mock.URL+path, "text/plain", nil)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	prom := promflowtest.Prometheus(t, promflowtest.PrometheusOptions{
		ScrapeConfigs: []promflowtest.ScrapeConfig{{JobName: "mock", Targets: []string{mock.Target}}},
		Rules:         diskRules,
	})
	defer func() { _ = prom.Stop() }()
	client, err := promquery.New(prom.URL, promquery.Options{})
	require.NoError(t, err)
	defer client.Close()

	var asked []string
	pub := &lastPublisher{}
	p, err := servicemetrics.NewAlertsPoller(client, pub, servicemetrics.AlertsOptions{
		Interval: time.Second, Logger: quietLogger,
		Link: func(_ context.Context, fps []string) (map[string]servicemetrics.IncidentRef, error) {
			asked = fps
			return map[string]servicemetrics.IncidentRef{fps[0]: {ID: "42", Status: "open"}}, nil
		},
	})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	testutil.Eventually(t, 30*time.Second, func() error {
		if err := p.Poll(ctx); err != nil {
			return err
		}
		if m := pub.alerts(t); len(m.Data.Alerts) == 0 {
			return fmt.Errorf("no firing alert yet: %+v", m.Data)
		}
		return nil
	})
	m := pub.alerts(t)
	assert.Equal(t, servicemetrics.TopicAlerts, m.Type)
	require.Len(t, m.Data.Alerts, 1)
	a := m.Data.Alerts[0]
	assert.Equal(t, "DiskUsageHigh", a.Name)
	assert.Equal(t, "sda", string(a.Labels["device"]))
	assert.Equal(t, "96", a.Value)
	assert.Equal(t, a.Labels.Fingerprint().String(), a.Fingerprint)
	assert.Equal(t, []string{a.Fingerprint}, asked)
	assert.Equal(t, &servicemetrics.IncidentRef{ID: "42", Status: "open"}, a.Incident)
	assert.Empty(t, m.Data.Error)
	require.Len(t, m.Data.Thresholds, 1, "the rate rule has no threshold")
	th := m.Data.Thresholds[0]
	assert.Equal(t, servicemetrics.Threshold{Alert: "DiskUsageHigh", Metric: "mock_disk_usage_percent", Op: ">", Value: 90, Expr: th.Expr}, th)

	require.NoError(t, prom.Stop())
	require.NoError(t, p.Poll(ctx))
	m = pub.alerts(t)
	assert.Equal(t, "Prometheus unreachable", m.Data.Error)
	assert.Equal(t, "Prometheus unreachable", m.Data.RulesError)
	assert.Empty(t, m.Data.Alerts)
	assert.Len(t, m.Data.Thresholds, 1, "the last thresholds are kept")
}

// TestAlertsPollerLinkFailure: when the incidents cannot be read the
// alerts are still published, without incidents, and the message says so.
func TestAlertsPollerLinkFailure(t *testing.T) {
	src := fakeAlerts{alerts: []promquery.Alert{{Labels: model.LabelSet{"alertname": "A"}, State: promquery.AlertFiring}, {State: promquery.AlertPending}}}
	pub := &lastPublisher{}
	p, err := servicemetrics.NewAlertsPoller(src, pub, servicemetrics.AlertsOptions{Logger: quietLogger,
		Link: func(context.Context, []string) (map[string]servicemetrics.IncidentRef, error) {
			return nil, errors.New("database down")
		}})
	require.NoError(t, err)
	require.NoError(t, p.Poll(context.Background()))
	m := pub.alerts(t)
	require.Len(t, m.Data.Alerts, 1)
	assert.Nil(t, m.Data.Alerts[0].Incident)
	assert.Equal(t, 1, m.Data.Pending)
	assert.Equal(t, "incidents unavailable", m.Data.LinkError)
	assert.Equal(t, "Prometheus answered 503 Service Unavailable", m.Data.RulesError)
}

// fakeAlerts answers alerts from a list and rules with a 503: for the
// error path only.
type fakeAlerts struct{ alerts []promquery.Alert }

func (f fakeAlerts) Alerts(context.Context) ([]promquery.Alert, promquery.Meta, error) {
	return f.alerts, promquery.Meta{}, nil
}

func (f fakeAlerts) Rules(context.Context) ([]promquery.RuleGroup, promquery.Meta, error) {
	return nil, promquery.Meta{}, &promquery.APIError{StatusCode: 503, Message: "unavailable"}
}

// switchingAlerts answers the alerts it holds at the time of the call.
type switchingAlerts struct {
	mu     sync.Mutex
	alerts []promquery.Alert
}

func (s *switchingAlerts) set(a []promquery.Alert) {
	s.mu.Lock()
	s.alerts = a
	s.mu.Unlock()
}

func (s *switchingAlerts) Alerts(context.Context) ([]promquery.Alert, promquery.Meta, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.alerts, promquery.Meta{}, nil
}

func (s *switchingAlerts) Rules(context.Context) ([]promquery.RuleGroup, promquery.Meta, error) {
	return nil, promquery.Meta{}, nil
}

// TestAlertsPollerPublishesChanges: a poll whose answer equals the last
// published one publishes nothing; the first poll and every change do.
func TestAlertsPollerPublishesChanges(t *testing.T) {
	src := &switchingAlerts{}
	pub := &lastPublisher{}
	p, err := servicemetrics.NewAlertsPoller(src, pub, servicemetrics.AlertsOptions{Logger: quietLogger})
	require.NoError(t, err)
	ctx := context.Background()
	poll := func(want int) {
		t.Helper()
		require.NoError(t, p.Poll(ctx))
		require.Equal(t, want, pub.published(servicemetrics.TopicAlerts))
	}
	poll(1) // the first state, even empty, is published
	poll(1)
	src.set([]promquery.Alert{{Labels: model.LabelSet{"alertname": "A"}, State: promquery.AlertFiring, Value: "1"}})
	poll(2)
	poll(2)
	assert.Equal(t, "A", pub.alerts(t).Data.Alerts[0].Name)
	src.set(nil)
	poll(3)
	assert.Empty(t, pub.alerts(t).Data.Alerts)
}
