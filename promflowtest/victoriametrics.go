package promflowtest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/promflow/promflow/promquery"
)

// VictoriaMetricsOptions describes a single-node VictoriaMetrics (Debian
// package victoria-metrics) to start. The zero value of every field works
// with [VictoriaMetrics]; [StartVictoriaMetrics] needs DataDir.
type VictoriaMetricsOptions struct {
	// Binary is the victoria-metrics executable; default:
	// "victoria-metrics" from PATH.
	Binary string
	// Addr is the listen address; default: a free loopback port.
	Addr string
	// DataDir holds the generated scrape config and the storage
	// (-storageDataPath). [VictoriaMetrics] uses a temporary directory.
	DataDir string
	// ScrapeConfigs, when set, are scraped by VictoriaMetrics itself
	// (-promscrape.config, the format of Prometheus' scrape_configs), every
	// ScrapeInterval (default 1s). Without them it only stores what is
	// written to it: remote write (WriteURL) and its import APIs.
	ScrapeConfigs  []ScrapeConfig
	ScrapeInterval time.Duration
	// ExtraArgs are appended to the command line; they override the
	// defaults (a later flag wins), e.g. -search.latencyOffset=30s.
	ExtraArgs []string
}

// VictoriaMetricsWritePath is VictoriaMetrics' Prometheus remote-write
// endpoint (Remote Write 1.0).
const VictoriaMetricsWritePath = "/api/v1/write"

// victoriaMetricsArgs are the flags a test wants besides addresses: data
// becomes visible to queries at once (-search.latencyOffset=0s, instead of
// 30 s later) and answers are never served from the rollup cache, so a
// query right after a write sees it.
var victoriaMetricsArgs = []string{
	"-search.latencyOffset=0s",
	"-search.disableCache",
}

// StartVictoriaMetrics writes the scrape configuration (if any) into
// cfg.DataDir, starts VictoriaMetrics with its storage there and waits until
// /health answers 200.
func StartVictoriaMetrics(ctx context.Context, cfg VictoriaMetricsOptions) (*Process, error) {
	if cfg.DataDir == "" {
		return nil, fmt.Errorf("promflowtest: VictoriaMetricsOptions.DataDir is required")
	}
	bin := cfg.Binary
	if bin == "" {
		var err error
		if bin, err = LookBinary("victoria-metrics", "victoria-metrics"); err != nil {
			return nil, err
		}
	}
	addr := cfg.Addr
	if addr == "" {
		var err error
		if addr, err = FreeAddr(); err != nil {
			return nil, err
		}
	}
	args := []string{
		"-httpListenAddr=" + addr,
		"-storageDataPath=" + filepath.Join(cfg.DataDir, "storage"),
	}
	args = append(args, victoriaMetricsArgs...)
	if len(cfg.ScrapeConfigs) > 0 {
		conf, err := victoriaMetricsScrapeConfig(cfg)
		if err != nil {
			return nil, err
		}
		path := filepath.Join(cfg.DataDir, "promscrape.yml")
		if err := os.WriteFile(path, conf, 0o644); err != nil {
			return nil, fmt.Errorf("promflowtest: write promscrape config: %w", err)
		}
		args = append(args, "-promscrape.config="+path)
	}
	args = append(args, cfg.ExtraArgs...)
	return start(ctx, "victoria-metrics", bin, args, addr, "/health")
}

// victoriaMetricsScrapeConfig renders -promscrape.config: only global and
// scrape_configs, which VictoriaMetrics parses strictly.
func victoriaMetricsScrapeConfig(cfg VictoriaMetricsOptions) ([]byte, error) {
	si := cfg.ScrapeInterval
	if si <= 0 {
		si = time.Second
	}
	scrapes, err := scrapeConfigs(cfg.ScrapeConfigs, si)
	if err != nil {
		return nil, err
	}
	return json.MarshalIndent(map[string]any{
		"global": map[string]string{
			"scrape_interval": model.Duration(si).String(),
			"scrape_timeout":  model.Duration(si).String(),
		},
		"scrape_configs": scrapes,
	}, "", "  ")
}

// VictoriaMetricsServer is a VictoriaMetrics started by [VictoriaMetrics].
type VictoriaMetricsServer struct {
	*Server
	// Client queries this server's Prometheus-compatible API; it is closed
	// at cleanup.
	Client *promquery.Client
	// WriteURL is the remote-write endpoint, URL + [VictoriaMetricsWritePath].
	WriteURL string
}

// WaitQuery waits until the query has a vector that satisfies cond (nil:
// any sample); see [WaitQuery].
func (v *VictoriaMetricsServer) WaitQuery(ctx context.Context, query string, cond func(model.Vector) bool) (model.Vector, error) {
	return WaitQuery(ctx, v.Client, query, cond)
}

// VictoriaMetrics starts a real single-node VictoriaMetrics (Debian package
// victoria-metrics) on a free port with a temporary storage directory,
// scraping opts.ScrapeConfigs itself when given and accepting remote write
// on WriteURL. It is stopped at cleanup; its log is printed if the test
// failed. Without the binary the test skips (fails when CI is set).
func VictoriaMetrics(t testing.TB, opts VictoriaMetricsOptions) *VictoriaMetricsServer {
	t.Helper()
	if opts.DataDir == "" {
		opts.DataDir = t.TempDir()
	}
	if opts.Addr == "" {
		opts.Addr = freeAddr(t)
	}
	s := startServer(t, func(ctx context.Context) (*Process, error) {
		return StartVictoriaMetrics(ctx, opts)
	})
	c, err := promquery.New(s.URL, promquery.Options{})
	if err != nil {
		t.Fatalf("promflowtest: victoria-metrics client: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &VictoriaMetricsServer{Server: s, Client: c, WriteURL: s.URL + VictoriaMetricsWritePath}
}
