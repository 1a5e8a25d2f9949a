package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/promflow/promflow/mockexporter"
)

// addRemoteWriteFlags defines -remote-write-url, -remote-write-interval
// and -remote-write-labels on fs. The returned function, called after
// fs.Parse, starts pushing reg's series (Remote Write 1.0) until ctx is done
// when a URL is set; the function it returns waits for the pusher to stop.
func addRemoteWriteFlags(fs *flag.FlagSet, getenv func(string) string) func(context.Context, *mockexporter.Registry, *slog.Logger) (func(), error) {
	url := fs.String("remote-write-url", getenv("REMOTE_WRITE_URL"), "push every series to this Remote Write endpoint, e.g. http://127.0.0.1:9090/api/v1/write (Prometheus with --web.enable-remote-write-receiver) or VictoriaMetrics' /api/v1/write (env REMOTE_WRITE_URL)")
	interval := fs.Duration("remote-write-interval", 15*time.Second, "interval between remote-write pushes")
	labels := fs.String("remote-write-labels", "job=mock-metrics", "comma-separated name=value labels added to every pushed series")
	return func(ctx context.Context, reg *mockexporter.Registry, logger *slog.Logger) (func(), error) {
		if *url == "" {
			return func() {}, nil
		}
		opts := mockexporter.RemoteWriteOptions{URL: *url, Interval: *interval, Labels: mockexporter.Labels{}}
		for _, kv := range strings.Split(*labels, ",") {
			if kv = strings.TrimSpace(kv); kv == "" {
				continue
			}
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return nil, fmt.Errorf("-remote-write-labels: %q is not name=value", kv)
			}
			opts.Labels[k] = v
		}
		if *interval <= 0 {
			return nil, fmt.Errorf("-remote-write-interval %v: want a positive duration", *interval)
		}
		if err := opts.Validate(); err != nil {
			return nil, fmt.Errorf("-remote-write-url, -remote-write-labels: %w", err)
		}
		ctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = reg.RemoteWrite(ctx, opts, false)
		}()
		logger.Info("mockmetrics: remote write", "url", *url, "interval", *interval)
		return func() { cancel(); <-done }, nil
	}
}
