package promflowtest_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/mockexporter"
	"github.com/promflow/promflow/promflowtest"
)

const checkoutRules = `
groups:
  - name: checkout
    rules:
      - alert: CheckoutDown
        expr: mock_service_up{service="checkout"} == 0
        labels: {severity: critical}
        annotations: {summary: "checkout is down"}
      - alert: CheckoutSlow
        expr: mock_http_latency_seconds{service="checkout"} > 1
        labels: {severity: warning}
        annotations: {summary: "checkout is slow"}
`

// routesConfig sends critical alerts to /pager, the rest to /ticket, and
// inhibits warnings of a service while it has a critical alert. base is the
// receiver's URL.
func routesConfig(base string) string {
	return fmt.Sprintf(`
route:
  receiver: ticket
  group_by: [alertname, service]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
  routes:
    - receiver: pager
      matchers: ['severity="critical"']
receivers:
  - name: pager
    webhook_configs: [{url: "%[1]s/pager", send_resolved: true}]
  - name: ticket
    webhook_configs: [{url: "%[1]s/ticket", send_resolved: true}]
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']
    equal: [service]
`, base)
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// TestRoutingAndInhibition wires the pieces by hand: a rule fires on a
// simulated value, the user's Alertmanager config pages for it, and the
// warning it inhibits reaches no one until the critical alert resolves.
func TestRoutingAndInhibition(t *testing.T) {
	rec := promflowtest.Receiver(t)
	am := promflowtest.Alertmanager(t, promflowtest.AlertmanagerOptions{Config: routesConfig(rec.URL())})
	mock := promflowtest.MockExporter(t, mockexporter.Options{})
	prom := promflowtest.Prometheus(t, promflowtest.PrometheusOptions{
		ScrapeConfigs: []promflowtest.ScrapeConfig{{JobName: "app", Targets: []string{mock.Target}, HonorLabels: true}},
		Rules:         checkoutRules,
		Alertmanagers: []string{strings.TrimPrefix(am.URL, "http://")},
	})
	ctx := ctxFor(t, 90*time.Second)
	_, err := prom.WaitTargetUp(ctx, "app")
	require.NoError(t, err)

	require.NoError(t, mock.SetValue("mock_service_up", mockexporter.Labels{"service": "checkout"}, 0))
	_, err = prom.WaitAlertFiring(ctx, promflowtest.Labels{"alertname": "CheckoutDown"})
	require.NoError(t, err)
	page, err := rec.WaitNotification(ctx, func(n promflowtest.Notification) bool {
		return n.Path == "/pager" && n.HasAlert("firing", promflowtest.Labels{"alertname": "CheckoutDown", "service": "checkout"})
	})
	require.NoError(t, err)
	assert.Equal(t, "pager", page.Receiver)
	assert.Equal(t, "4", page.Version)
	assert.Equal(t, "checkout is down", page.Alerts[0].Annotations["summary"])
	assert.NotEmpty(t, page.Alerts[0].Fingerprint)

	require.NoError(t, mock.SetValue("mock_http_latency_seconds", mockexporter.Labels{"service": "checkout"}, 3))
	slow, err := am.WaitAlert(ctx, promflowtest.Labels{"alertname": "CheckoutSlow"}, "suppressed")
	require.NoError(t, err)
	assert.NotEmpty(t, slow.Status.InhibitedBy)
	assert.Equal(t, []string{"ticket"}, slow.ReceiverNames())
	for _, n := range rec.Notifications() {
		assert.NotEqual(t, "/ticket", n.Path, "inhibited alert notified: %s", n)
	}

	// The critical alert resolves: the pager hears so, and the warning is
	// no longer inhibited and reaches the ticket receiver.
	require.NoError(t, mock.SetValue("mock_service_up", mockexporter.Labels{"service": "checkout"}, 1))
	_, err = rec.WaitNotification(ctx, func(n promflowtest.Notification) bool {
		return n.Path == "/pager" && n.HasAlert("resolved", promflowtest.Labels{"alertname": "CheckoutDown"})
	})
	require.NoError(t, err)
	ticket, err := rec.WaitNotification(ctx, func(n promflowtest.Notification) bool {
		return n.Path == "/ticket" && n.HasAlert("firing", promflowtest.Labels{"alertname": "CheckoutSlow"})
	})
	require.NoError(t, err)
	assert.Equal(t, "ticket", ticket.Receiver)
	require.NoError(t, prom.WaitAlertResolved(ctx, promflowtest.Labels{"alertname": "CheckoutDown"}))

	// A wait that gives up says what it saw instead.
	_, err = prom.WaitAlertFiring(ctxFor(t, 300*time.Millisecond), promflowtest.Labels{"alertname": "NoSuchAlert"})
	require.ErrorIs(t, err, promflowtest.ErrWaitTimeout)
	assert.Contains(t, err.Error(), `firing {alertname="CheckoutSlow"`)
	_, err = am.WaitAlert(ctxFor(t, 300*time.Millisecond), promflowtest.Labels{"alertname": "NoSuchAlert"}, "")
	require.ErrorIs(t, err, promflowtest.ErrWaitTimeout)
	assert.Contains(t, err.Error(), "active {alertname=\"CheckoutSlow\"")
	_, err = prom.WaitQuery(ctxFor(t, 300*time.Millisecond), `mock_service_up{service="checkout"} == 0`, nil)
	require.ErrorIs(t, err, promflowtest.ErrWaitTimeout)
	assert.Contains(t, err.Error(), "last vector: empty")
}

// TestAlertmanagerDefaultReceiver: without Config or WebhookURL every
// alert posted to Alertmanager reaches the Receiver it starts, except
// those a silence holds back until it expires.
func TestAlertmanagerDefaultReceiver(t *testing.T) {
	am := promflowtest.Alertmanager(t, promflowtest.AlertmanagerOptions{})
	require.NotNil(t, am.Receiver)
	ctx := ctxFor(t, 30*time.Second)
	id, err := am.Silence(ctx, promflowtest.Labels{"alertname": "Quiet"}, time.Hour)
	require.NoError(t, err)
	require.NotEmpty(t, id)

	resp, err := http.Post(am.URL+"/api/v2/alerts", "application/json", strings.NewReader(
		`[{"labels":{"alertname":"Quiet"}},{"labels":{"alertname":"Posted","team":"a"},"annotations":{"summary":"by hand"}}]`))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	n, err := am.Receiver.WaitNotification(ctx, nil)
	require.NoError(t, err)
	assert.Equal(t, "default", n.Receiver)
	assert.Equal(t, "firing", n.Status)
	assert.Equal(t, map[string]string{"alertname": "Posted", "team": "a"}, n.CommonLabels)

	quiet, err := am.WaitAlert(ctx, promflowtest.Labels{"alertname": "Quiet"}, "suppressed")
	require.NoError(t, err)
	assert.Equal(t, []string{id}, quiet.Status.SilencedBy)
	posted, err := am.WaitAlert(ctx, promflowtest.Labels{"alertname": "Posted"}, "active")
	require.NoError(t, err)
	assert.Equal(t, "by hand", posted.Annotations["summary"])
	for _, n := range am.Receiver.Notifications() {
		assert.False(t, n.HasAlert("", promflowtest.Labels{"alertname": "Quiet"}), "silenced, yet notified: %s", n)
	}

	require.NoError(t, promflowtest.ExpireSilence(ctx, am.URL, id))
	_, err = am.Receiver.WaitNotification(ctx, func(n promflowtest.Notification) bool {
		return n.HasAlert("firing", promflowtest.Labels{"alertname": "Quiet"})
	})
	require.NoError(t, err)
}

// TestAlertmanagerBadConfig: a config Alertmanager rejects fails the start
// with Alertmanager's own message.
func TestAlertmanagerBadConfig(t *testing.T) {
	if _, err := promflowtest.LookBinary("prometheus-alertmanager", "prometheus-alertmanager"); err != nil {
		if _, err2 := promflowtest.LookBinary("alertmanager", "prometheus-alertmanager"); err2 != nil {
			promflowtest.SkipOrFail(t, "%v", err)
		}
	}
	_, err := promflowtest.StartAlertmanager(context.Background(), promflowtest.AlertmanagerOptions{
		DataDir: t.TempDir(),
		Config:  "route:\n  receiver: nowhere\nreceivers: []\n",
	})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "exited before it was ready")
	assert.Contains(t, err.Error(), `undefined receiver`)
}

func TestReceiver(t *testing.T) {
	rec := promflowtest.Receiver(t)
	post := func(path, body string) int {
		resp, err := http.Post(rec.URL()+path, "application/json", strings.NewReader(body))
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusBadRequest, post("/x", "{not json"))
	resp, err := http.Get(rec.URL())
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	assert.Empty(t, rec.Notifications())

	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = rec.WaitNotification(short, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no notification at all")

	// A waiter started before the notification arrives gets it.
	got := make(chan promflowtest.Notification, 1)
	go func() {
		n, err := rec.WaitNotification(ctxFor(t, 10*time.Second), func(n promflowtest.Notification) bool { return n.Path == "/pager" })
		assert.NoError(t, err)
		got <- n
	}()
	require.Equal(t, http.StatusOK, post("/ticket", `{"version":"4","receiver":"ticket","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"A"}}]}`))
	require.Equal(t, http.StatusOK, post("/pager", `{"version":"4","receiver":"pager","status":"resolved","alerts":[{"status":"resolved","labels":{"alertname":"B","service":"x"}}]}`))
	n := <-got
	assert.Equal(t, "pager", n.Receiver)
	assert.True(t, n.HasAlert("resolved", promflowtest.Labels{"alertname": "B"}))
	assert.False(t, n.HasAlert("firing", promflowtest.Labels{"alertname": "B"}))
	require.Len(t, rec.Notifications(), 2)

	short2, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	_, err = rec.WaitNotification(short2, func(n promflowtest.Notification) bool { return n.Path == "/nobody" })
	require.Error(t, err)
	assert.Contains(t, err.Error(), `/ticket firing receiver="ticket" [firing {alertname="A"}]`)
	assert.Contains(t, err.Error(), "the receiver got 2")
}

// recordingTB records the errors RuleTest reports instead of failing.
type recordingTB struct {
	testing.TB
	errors []string
}

func (r *recordingTB) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func TestRuleTestReportsEachFailingCase(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "rules.yml"), []byte(checkoutRules), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "bad_test.yml"), []byte(`
rule_files: [rules.yml]
evaluation_interval: 1s
tests:
  - name: down and slow
    interval: 1s
    input_series:
      - series: 'mock_service_up{service="checkout"}'
        values: "1 0 0"
      - series: 'mock_http_latency_seconds{service="checkout"}'
        values: "3 3 3"
    alert_rule_test:
      - eval_time: 2s
        alertname: CheckoutDown
        exp_alerts: []
      - eval_time: 2s
        alertname: CheckoutSlow
        exp_alerts: [{exp_labels: {severity: warning, service: checkout}, exp_annotations: {summary: "checkout is slow"}}]
    promql_expr_test:
      - expr: mock_http_latency_seconds
        eval_time: 1s
        exp_samples: [{labels: 'mock_http_latency_seconds{service="checkout"}', value: 4}]
`), 0o644))
	rec := &recordingTB{TB: t}
	failures := promflowtest.RuleTest(rec, filepath.Join(dir, "bad_test.yml"))
	require.Len(t, failures, 2, "%v", rec.errors)
	assert.Equal(t, "down and slow", failures[0].Group)
	assert.Contains(t, failures[0].Case, "alertname: CheckoutDown, time: 2s")
	assert.Contains(t, failures[0].Case, `got:[`)
	assert.Contains(t, failures[1].Case, `expr: "mock_http_latency_seconds", time: 1s`)
	require.Len(t, rec.errors, 2)
	assert.Contains(t, rec.errors[0], `group "down and slow": alertname: CheckoutDown`)

	rec = &recordingTB{TB: t}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "broken_test.yml"), []byte("tests: [\n"), 0o644))
	failures = promflowtest.RuleTest(rec, filepath.Join(dir, "broken_test.yml"))
	require.Len(t, failures, 1)
	assert.Contains(t, failures[0].Case, "yaml")
	assert.Len(t, rec.errors, 1)
}

// TestPipelinePlaceholderWithoutReceiver: StartPipeline refuses a config
// that names the receiver when there is none, before starting any server.
func TestPipelinePlaceholderWithoutReceiver(t *testing.T) {
	_, err := promflowtest.StartPipeline(context.Background(), promflowtest.PipelineOptions{
		MockAddr:           "127.0.0.1:0",
		ServiceAddr:        "127.0.0.1:0",
		DataDir:            t.TempDir(),
		AlertmanagerConfig: routesConfig(promflowtest.ReceiverPlaceholder),
	})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "${RECEIVER_URL}")
	assert.Contains(t, err.Error(), "PipelineOptions.Receiver is nil")
}
