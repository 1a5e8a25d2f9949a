package promflowtest_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/promflow/promflow/promflowtest"
)

// The configuration Prometheus gets is generated JSON (which YAML parsers
// read), so no value a test supplies can change its structure.
func ExamplePrometheusConfigFile() {
	b, err := promflowtest.PrometheusConfigFile(promflowtest.PrometheusOptions{
		DataDir:       "/tmp/prom",
		ScrapeConfigs: []promflowtest.ScrapeConfig{{JobName: "app", Targets: []string{"127.0.0.1:8080"}}},
		Rules:         "groups: []",
		Alertmanagers: []string{"127.0.0.1:9093"},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(string(b))
	// Output:
	// {
	//   "alerting": {
	//     "alertmanagers": [
	//       {
	//         "static_configs": [
	//           {
	//             "targets": [
	//               "127.0.0.1:9093"
	//             ]
	//           }
	//         ]
	//       }
	//     ]
	//   },
	//   "global": {
	//     "evaluation_interval": "1s",
	//     "scrape_interval": "1s",
	//     "scrape_timeout": "1s"
	//   },
	//   "rule_files": [
	//     "/tmp/prom/promflowtest-rules.yml"
	//   ],
	//   "scrape_configs": [
	//     {
	//       "job_name": "app",
	//       "metrics_path": "/metrics",
	//       "static_configs": [
	//         {
	//           "targets": [
	//             "127.0.0.1:8080"
	//           ]
	//         }
	//       ]
	//     }
	//   ]
	// }
}

// A receiver records what Alertmanager posts; here a notification is posted
// by hand, as Alertmanager would for a webhook_configs url of
// URL()+"/pager". In a test, use promflowtest.Receiver(t) instead of
// NewReceiver and Close.
func ExampleReceiver() {
	rec := promflowtest.NewReceiver()
	defer rec.Close()

	payload := `{"version":"4","receiver":"pager","status":"firing",
	  "alerts":[{"status":"firing","labels":{"alertname":"CheckoutDown","severity":"critical"}}]}`
	resp, err := http.Post(rec.URL()+"/pager", "application/json", strings.NewReader(payload))
	if err != nil {
		panic(err)
	}
	resp.Body.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n, err := rec.WaitNotification(ctx, func(n promflowtest.Notification) bool {
		return n.Path == "/pager" && n.HasAlert("firing", promflowtest.Labels{"alertname": "CheckoutDown"})
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(n)
	// Output:
	// /pager firing receiver="pager" [firing {alertname="CheckoutDown", severity="critical"}]
}

// ParseRuleTestOutput is what RuleTest uses to turn promtool's report into
// one test error per failing case.
func ExampleParseRuleTestOutput() {
	stderr := `  FAILED:
    name: checkout,
    alertname: CheckoutDown, time: 2s,
        exp:[],
        got:[
            0:
              Labels:{alertname="CheckoutDown", severity="critical"}
            ]
`
	for _, f := range promflowtest.ParseRuleTestOutput("checkout_test.yml", stderr) {
		fmt.Printf("%s | %s | %s\n", f.File, f.Group, strings.SplitN(f.Case, "\n", 2)[0])
	}
	// Output:
	// checkout_test.yml | checkout | alertname: CheckoutDown, time: 2s
}

func ExampleLabels_Matches() {
	match := promflowtest.Labels{"alertname": "CheckoutDown"}
	fmt.Println(match.Matches(map[string]string{"alertname": "CheckoutDown", "service": "checkout"}))
	fmt.Println(match.Matches(map[string]string{"alertname": "CheckoutSlow"}))
	// Output:
	// true
	// false
}

// Pipeline in a test: the user's rule and routes, a simulated value, the
// notification and the incident. (Compiled, not run: it needs prometheus,
// prometheus-alertmanager and PostgreSQL; the same flow runs in this
// package's TestSuite.)
func ExamplePipeline() {
	var t *testing.T // in a real test: func TestCheckout(t *testing.T)
	p := promflowtest.Pipeline(t, promflowtest.PipelineOptions{
		Rules: `
groups:
  - name: checkout
    rules:
      - alert: CheckoutDown
        expr: mock_service_up{service="checkout"} == 0
        labels: {severity: critical}`,
	})
	ctx := promflowtest.WaitContext(t)
	if err := p.Simulate(ctx, "/simulate/service-up/checkout/0"); err != nil {
		t.Fatal(err)
	}
	// The default Alertmanager config sends everything to p.Receiver and
	// to service-metrics.
	if _, err := p.Receiver.WaitNotification(ctx, func(n promflowtest.Notification) bool {
		return n.HasAlert("firing", promflowtest.Labels{"alertname": "CheckoutDown"})
	}); err != nil {
		t.Fatal(err)
	}
	inc, err := p.WaitIncidentOpened(ctx, "checkout")
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println(inc.Status)
}
