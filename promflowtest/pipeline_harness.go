package promflowtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/promflow/promflow/incidents"
	"github.com/promflow/promflow/promquery"
)

// Pipeline starts the whole flow of examples/pipeline for a test, on free
// loopback ports: mock-metrics, a real Prometheus with the shipped rules
// and opts.Rules, a real Alertmanager with opts.AlertmanagerConfig, and
// service-metrics on a fresh database of the test's own ([DatabaseURL]).
// Zero fields of opts get test defaults: 1s scrape, evaluation and poll
// intervals, a temporary data directory, a [Receiver] (p.Receiver) that
// the default Alertmanager config sends everything to, and logs kept in
// memory. Everything is stopped at cleanup; if the test failed, the logs
// of Prometheus, Alertmanager and (unless opts.Logger was set) the
// in-process services are printed. Without a binary or the
// database the test skips (fails when CI is set).
func Pipeline(t testing.TB, opts PipelineOptions) *RunningPipeline {
	t.Helper()
	var logs *syncBuffer
	if opts.Logger == nil {
		logs = &syncBuffer{}
		opts.Logger = slog.New(slog.NewTextHandler(logs, nil))
	}
	opts = pipelineTestDefaults(t, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	p, err := StartPipeline(ctx, opts)
	if errors.Is(err, ErrBinaryNotFound) {
		SkipOrFail(t, "%v", err)
		return nil
	}
	if err != nil {
		if logs != nil {
			t.Logf("--- pipeline log ---\n%s", logs.String())
		}
		t.Fatalf("promflowtest: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, c := range p.children {
				if proc, _ := c.sup.Current(); proc != nil {
					t.Logf("--- %s log (%s, %d restarts) ---\n%s", proc.Name, proc.URL, c.sup.Restarts(), proc.Log())
				}
			}
			if logs != nil {
				t.Logf("--- pipeline log (mock-metrics, service-metrics) ---\n%s", logs.String())
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := p.Shutdown(ctx); err != nil {
			t.Errorf("promflowtest: pipeline close: %v", err)
		}
	})
	return p
}

func pipelineTestDefaults(t testing.TB, opts PipelineOptions) PipelineOptions {
	t.Helper()
	for _, addr := range []*string{&opts.MockAddr, &opts.ServiceAddr} {
		if *addr == "" {
			*addr = "127.0.0.1:0"
		}
	}
	for _, addr := range []*string{&opts.PrometheusAddr, &opts.AlertmanagerAddr, &opts.VictoriaMetricsAddr} {
		if *addr == "" {
			*addr = freeAddr(t)
		}
	}
	if opts.ScrapeInterval <= 0 {
		opts.ScrapeInterval = time.Second
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = time.Second
	}
	if opts.DataDir == "" {
		opts.DataDir = t.TempDir()
	}
	if opts.Receiver == nil {
		opts.Receiver = Receiver(t)
	}
	if opts.DatabaseURL == "" {
		opts.DatabaseURL = DatabaseURL(t)
	}
	return opts
}

// Simulate posts to a mock-metrics route, e.g. "/simulate/cpu-usage/95"
// or "/simulate/service-unavailable/checkout/1" (see
// [github.com/promflow/promflow/mockexporter.SeedRoutes]); any answer but
// 200 is an error carrying the answer's text.
func (p *RunningPipeline) Simulate(ctx context.Context, route string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.MockURL+route, nil)
	if err != nil {
		return fmt.Errorf("promflowtest: simulate %s: %w", route, err)
	}
	if p.WriteToken != "" {
		req.Header.Set("Authorization", "Bearer "+p.WriteToken)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("promflowtest: simulate %s: %w", route, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("promflowtest: simulate %s: %s: %s", route, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

// WaitQuery waits until the query has a vector satisfying cond (nil: any
// sample) in the pipeline's Prometheus; see [WaitQuery].
func (p *RunningPipeline) WaitQuery(ctx context.Context, query string, cond func(model.Vector) bool) (model.Vector, error) {
	return WaitQuery(ctx, p.Client, query, cond)
}

// WaitAlertFiring waits until the pipeline's Prometheus fires an alert
// whose labels include match; see [WaitAlertFiring].
func (p *RunningPipeline) WaitAlertFiring(ctx context.Context, match Labels) (promquery.Alert, error) {
	return WaitAlertFiring(ctx, p.Client, match)
}

// WaitAlertResolved waits until the pipeline's Prometheus has no pending or
// firing alert whose labels include match.
func (p *RunningPipeline) WaitAlertResolved(ctx context.Context, match Labels) error {
	return WaitAlertResolved(ctx, p.Client, match)
}

// WaitAlertmanagerAlert waits until the pipeline's Alertmanager holds an
// alert whose labels include match in the state ("active", "suppressed",
// "" for any); see [WaitAlertmanagerAlert].
func (p *RunningPipeline) WaitAlertmanagerAlert(ctx context.Context, match Labels, state string) (AlertmanagerAlert, error) {
	return WaitAlertmanagerAlert(ctx, p.AlertmanagerURL, match, state)
}

// WaitIncidentOpened waits until service-metrics has an open incident of
// the service; see [WaitIncidentOpened]. While PostgreSQL has not been
// reachable yet it waits for that first.
func (p *RunningPipeline) WaitIncidentOpened(ctx context.Context, service string) (incidents.Incident, error) {
	store, err := p.waitStore(ctx)
	if err != nil {
		return incidents.Incident{}, err
	}
	return WaitIncidentOpened(ctx, store, service)
}

// WaitIncidentResolved waits until the incident id is resolved.
func (p *RunningPipeline) WaitIncidentResolved(ctx context.Context, id string) (incidents.Incident, error) {
	store, err := p.waitStore(ctx)
	if err != nil {
		return incidents.Incident{}, err
	}
	return WaitIncidentResolved(ctx, store, id)
}

// waitStore waits until service-metrics has reached PostgreSQL (it starts
// without it) and returns its store.
func (p *RunningPipeline) waitStore(ctx context.Context) (*incidents.Store, error) {
	var store *incidents.Store
	err := poll(ctx, "service-metrics connected to PostgreSQL", func() (bool, string) {
		store = p.Service.Store()
		return store != nil, "PostgreSQL not reachable yet (incidents API answers 503)"
	})
	return store, err
}
