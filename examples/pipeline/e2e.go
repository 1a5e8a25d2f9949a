package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/promflow/promflow/promflowtest"
)

// errChecksFailed is returned by the -e2e-report mode when a check failed:
// main exits 1.
var errChecksFailed = errors.New("e2e: checks failed")

// e2eFlags are the flags of the end-to-end smoke test mode.
type e2eFlags struct {
	report    string
	target    string
	alertLoop bool
	timeout   time.Duration
}

// addE2EFlags declares the -e2e-* flags on fs.
func addE2EFlags(fs *flag.FlagSet) *e2eFlags {
	var f e2eFlags
	fs.StringVar(&f.report, "e2e-report", "", "run the seed report's end-to-end checks, write the Markdown report to `FILE` (- for stdout), "+
		"stop and exit 0 only if every check passed")
	fs.StringVar(&f.target, "e2e-target", "", "with -e2e-report: check the services already running at `mock=URL,prometheus=URL,service=URL` "+
		"(this pipeline elsewhere, or the original's: http://localhost:8082, :9090, :8005) instead of starting the pipeline")
	fs.BoolVar(&f.alertLoop, "e2e-alert-loop", true, "with -e2e-report: also run the alert → incident → WebSocket loop (needs alert rules and an Alertmanager wired to service-metrics)")
	fs.DurationVar(&f.timeout, "e2e-timeout", 30*time.Second, "with -e2e-report: bound of each check (the alert loop's checks get twice as long)")
	return &f
}

// asked reports whether an -e2e-* flag selects the e2e mode (runE2E then
// says if the flags are incomplete).
func (f *e2eFlags) asked() bool { return f.report != "" || f.target != "" }

// check validates the flags and returns the targets given by -e2e-target
// (nil when the pipeline is to be started).
func (f *e2eFlags) check() (*promflowtest.SeedTargets, error) {
	if f.report == "" {
		if f.target != "" {
			return nil, errors.New("flags: -e2e-target needs -e2e-report")
		}
		return nil, nil
	}
	if f.timeout <= 0 {
		return nil, errors.New("flags: -e2e-timeout must be positive")
	}
	if f.target == "" {
		return nil, nil
	}
	return parseTarget(f.target)
}

// parseTarget reads mock=URL,prometheus=URL,service=URL.
func parseTarget(s string) (*promflowtest.SeedTargets, error) {
	var t promflowtest.SeedTargets
	fields := map[string]*string{"mock": &t.MockURL, "prometheus": &t.PrometheusURL, "service": &t.ServiceURL}
	for _, part := range strings.Split(s, ",") {
		key, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		dst, known := fields[key]
		if !ok || !known {
			return nil, fmt.Errorf("flags: -e2e-target: %q is not mock=URL, prometheus=URL or service=URL", part)
		}
		if u, err := url.Parse(val); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("flags: -e2e-target: %s=%q is not an http(s) URL", key, val)
		}
		*dst = val
	}
	for key, dst := range fields {
		if *dst == "" {
			return nil, fmt.Errorf("flags: -e2e-target: %s=URL is missing", key)
		}
	}
	return &t, nil
}

// runE2E runs the checks against the -e2e-target services, or against a
// pipeline started with cfg, writes the report and returns errChecksFailed
// if a check failed.
func runE2E(ctx context.Context, f *e2eFlags, cfg promflowtest.PipelineOptions, log *slog.Logger, out io.Writer) (err error) {
	targets, err := f.check()
	if err != nil {
		return err
	}
	var t promflowtest.SeedTargets
	if targets != nil {
		t = *targets
	} else {
		p, startErr := promflowtest.StartPipeline(ctx, cfg)
		if startErr != nil {
			return startErr
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err = errors.Join(err, p.Shutdown(sctx))
		}()
		// A component that stops during the checks ends them at once.
		var stop func()
		ctx, stop = watchPipeline(ctx, p, log)
		defer stop()
		t = promflowtest.SeedTargets{MockURL: p.MockURL, PrometheusURL: p.PrometheusURL, ServiceURL: p.ServiceURL, QueryURL: p.QueryURL}
	}
	t.AlertLoop, t.CheckTimeout, t.AlertTimeout = f.alertLoop, f.timeout, 2*f.timeout
	log.Info("running the seed report's checks", "mock", t.MockURL, "prometheus", t.PrometheusURL, "service", t.ServiceURL, "alert_loop", t.AlertLoop)
	r := promflowtest.RunSeedChecks(ctx, t)
	if err := writeReport(r, f.report, out); err != nil {
		return err
	}
	total, passed, failed := r.Totals()
	log.Info("seed report checks done", "total", total, "passed", passed, "failed", failed, "duration", r.Duration.Round(time.Millisecond))
	if !r.Passed() {
		for _, c := range r.Failed() {
			log.Error("check failed", "stage", int(c.Stage), "check", c.Name, "details", c.Details)
		}
		return fmt.Errorf("%w: %d of %d", errChecksFailed, failed, total)
	}
	return nil
}

// watchPipeline returns a context that ends when ctx does or a component
// of p stops; stop releases it and waits for the watcher.
func watchPipeline(ctx context.Context, p *promflowtest.RunningPipeline, log *slog.Logger) (context.Context, func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case err := <-p.Err():
			log.Error("pipeline component stopped", "err", err)
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, func() { cancel(); <-done }
}

func writeReport(r *promflowtest.SeedReport, path string, out io.Writer) error {
	if path == "-" {
		return r.WriteMarkdown(out)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("e2e report: %w", err)
	}
	if err := r.WriteMarkdown(f); err != nil {
		f.Close()
		return fmt.Errorf("e2e report %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("e2e report %s: %w", path, err)
	}
	return nil
}
