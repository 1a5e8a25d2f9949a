package promflowtest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/prometheus/common/model"
)

// ScrapeConfig is one scrape job of a generated Prometheus configuration.
type ScrapeConfig struct {
	JobName     string
	MetricsPath string // default /metrics
	Targets     []string
	// Labels are added to every target of the job.
	Labels map[string]string
	// ScrapeInterval overrides the global interval when non-zero.
	ScrapeInterval time.Duration
	// ScrapeTimeout overrides the default timeout when non-zero.
	ScrapeTimeout time.Duration
	// HonorLabels keeps the target's own job and instance labels (a
	// simulator that exposes instance="mock-app-1" wants that).
	HonorLabels bool
	// NativeHistograms sets scrape_native_histograms for the job, which
	// Prometheus 3.8 and later need to ingest native histograms (their
	// --enable-feature=native-histograms is a no-op). Prometheus 2 (which
	// takes that flag instead) and VictoriaMetrics refuse the setting.
	NativeHistograms bool
}

// PrometheusOptions describes a Prometheus server to start. The zero value of
// every field works with [Prometheus]; [StartPrometheus] needs DataDir.
type PrometheusOptions struct {
	// Binary is the prometheus executable; default: "prometheus" from PATH.
	Binary string
	// Addr is the listen address; default: a free loopback port.
	Addr string
	// DataDir holds the generated config and the TSDB. [Prometheus] uses a
	// temporary directory; [StartPrometheus] requires it (the caller creates
	// and removes it).
	DataDir string
	// ScrapeInterval and EvaluationInterval default to 1s.
	ScrapeInterval     time.Duration
	EvaluationInterval time.Duration
	ScrapeConfigs      []ScrapeConfig
	// RuleFiles maps a file name to its YAML content (Prometheus rule file
	// format); each is written to DataDir and listed in rule_files.
	RuleFiles map[string]string
	// Rules is the content of one more rule file (Prometheus rule file
	// format, YAML), written as promflowtest-rules.yml next to RuleFiles.
	Rules string
	// RemoteWrite are the URLs Prometheus sends every sample it scrapes or
	// records to (remote_write, Remote Write 1.0), e.g. a
	// [VictoriaMetricsServer]'s WriteURL; batches leave at least once per
	// scrape interval.
	RemoteWrite []string
	// Alertmanagers are host:port addresses alerts are sent to.
	Alertmanagers []string
	// EnableLifecycle turns on Prometheus' lifecycle API (POST /-/quit and
	// /-/reload) and its admin API (TSDB snapshots and deletion). Off by
	// default: either lets any client that reaches the port stop Prometheus
	// or delete its data. Stop a server with [Process.Stop] instead.
	EnableLifecycle bool
	// CORSOrigin is the regular expression (fully anchored) of the
	// browser origins whose pages may read Prometheus' API
	// (--web.cors.origin); empty keeps Prometheus' default, any origin.
	CORSOrigin string
	// ExtraArgs are appended to the command line (e.g. --query.timeout=1s).
	ExtraArgs []string
}

// PrometheusConfigFile renders the configuration file for cfg. Rule file
// paths are resolved inside cfg.DataDir.
func PrometheusConfigFile(cfg PrometheusOptions) ([]byte, error) {
	si := cfg.ScrapeInterval
	if si <= 0 {
		si = time.Second
	}
	ei := cfg.EvaluationInterval
	if ei <= 0 {
		ei = time.Second
	}
	doc := map[string]any{
		"global": map[string]string{
			"scrape_interval":     model.Duration(si).String(),
			"evaluation_interval": model.Duration(ei).String(),
			"scrape_timeout":      model.Duration(si).String(),
		},
	}
	scrapes, err := scrapeConfigs(cfg.ScrapeConfigs, si)
	if err != nil {
		return nil, err
	}
	doc["scrape_configs"] = scrapes
	if files := ruleFiles(cfg); len(files) > 0 {
		names := make([]string, 0, len(files))
		for n := range files {
			names = append(names, filepath.Join(cfg.DataDir, n))
		}
		sort.Strings(names)
		doc["rule_files"] = names
	}
	if len(cfg.RemoteWrite) > 0 {
		rw := make([]any, len(cfg.RemoteWrite))
		for i, u := range cfg.RemoteWrite {
			// Sent within a scrape interval (Prometheus' default waits
			// up to 5 s), so a test sees remote data soon.
			rw[i] = map[string]any{"url": u, "queue_config": map[string]string{"batch_send_deadline": model.Duration(si).String()}}
		}
		doc["remote_write"] = rw
	}
	if len(cfg.Alertmanagers) > 0 {
		doc["alerting"] = map[string]any{
			"alertmanagers": []any{map[string]any{
				"static_configs": []any{map[string]any{"targets": cfg.Alertmanagers}},
			}},
		}
	}
	return json.MarshalIndent(doc, "", "  ")
}

// StartPrometheus writes the configuration and rule files into cfg.DataDir,
// starts Prometheus and waits until /-/ready answers 200.
func StartPrometheus(ctx context.Context, cfg PrometheusOptions) (*Process, error) {
	if cfg.DataDir == "" {
		return nil, fmt.Errorf("promflowtest: PrometheusOptions.DataDir is required")
	}
	bin := cfg.Binary
	if bin == "" {
		var err error
		if bin, err = LookBinary("prometheus", "prometheus"); err != nil {
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
	conf, err := PrometheusConfigFile(cfg)
	if err != nil {
		return nil, err
	}
	confPath := filepath.Join(cfg.DataDir, "prometheus.yml")
	if err := os.WriteFile(confPath, conf, 0o644); err != nil {
		return nil, fmt.Errorf("promflowtest: write config: %w", err)
	}
	for name, content := range ruleFiles(cfg) {
		if err := os.WriteFile(filepath.Join(cfg.DataDir, name), []byte(content), 0o644); err != nil {
			return nil, fmt.Errorf("promflowtest: write rules: %w", err)
		}
	}
	args := []string{
		"--config.file=" + confPath,
		"--storage.tsdb.path=" + filepath.Join(cfg.DataDir, "tsdb"),
		"--web.listen-address=" + addr,
	}
	if cfg.EnableLifecycle {
		args = append(args, "--web.enable-lifecycle", "--web.enable-admin-api")
	}
	if cfg.CORSOrigin != "" {
		args = append(args, "--web.cors.origin="+cfg.CORSOrigin)
	}
	args = append(args, cfg.ExtraArgs...)
	return start(ctx, "prometheus", bin, args, addr, "/-/ready")
}

// ruleFiles maps the base name of every rule file of cfg to its content,
// Rules included as promflowtest-rules.yml.
func ruleFiles(cfg PrometheusOptions) map[string]string {
	files := make(map[string]string, len(cfg.RuleFiles)+1)
	for n, c := range cfg.RuleFiles {
		files[filepath.Base(n)] = c
	}
	if cfg.Rules != "" {
		files["promflowtest-rules.yml"] = cfg.Rules
	}
	return files
}

// scrapeJob is one scrape_configs entry, in the format Prometheus and
// VictoriaMetrics' -promscrape.config share.
type scrapeJob struct {
	JobName        string         `json:"job_name"`
	MetricsPath    string         `json:"metrics_path"`
	ScrapeInterval string         `json:"scrape_interval,omitempty"`
	ScrapeTimeout  string         `json:"scrape_timeout,omitempty"`
	HonorLabels    bool           `json:"honor_labels,omitempty"`
	NativeHist     bool           `json:"scrape_native_histograms,omitempty"`
	StaticConfigs  []staticConfig `json:"static_configs"`
}

type staticConfig struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels,omitempty"`
}

// scrapeConfigs renders the scrape jobs; si is the global scrape interval.
func scrapeConfigs(jobs []ScrapeConfig, si time.Duration) ([]scrapeJob, error) {
	var scrapes []scrapeJob
	for _, sc := range jobs {
		if sc.JobName == "" {
			return nil, fmt.Errorf("promflowtest: scrape config without job name")
		}
		s := scrapeJob{JobName: sc.JobName, MetricsPath: sc.MetricsPath, HonorLabels: sc.HonorLabels, NativeHist: sc.NativeHistograms, StaticConfigs: []staticConfig{{Targets: sc.Targets, Labels: sc.Labels}}}
		if s.MetricsPath == "" {
			s.MetricsPath = "/metrics"
		}
		if s.StaticConfigs[0].Targets == nil {
			s.StaticConfigs[0].Targets = []string{}
		}
		if sc.ScrapeInterval > 0 {
			s.ScrapeInterval = model.Duration(sc.ScrapeInterval).String()
		}
		if sc.ScrapeTimeout > 0 {
			s.ScrapeTimeout = model.Duration(sc.ScrapeTimeout).String()
		} else if sc.ScrapeInterval > 0 && sc.ScrapeInterval < si {
			s.ScrapeTimeout = s.ScrapeInterval
		}
		scrapes = append(scrapes, s)
	}
	return scrapes, nil
}
