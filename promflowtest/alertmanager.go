package promflowtest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/common/model"
)

// AlertmanagerOptions describes an Alertmanager to start. Every field has a
// working zero value with [Alertmanager]; [StartAlertmanager] needs DataDir.
type AlertmanagerOptions struct {
	// Binary is the alertmanager executable; default:
	// "prometheus-alertmanager" (Debian's name), else "alertmanager", from PATH.
	Binary string
	// Addr is the listen address; default: a free loopback port.
	Addr string
	// DataDir holds the config and the notification log. [Alertmanager]
	// uses a temporary directory; [StartAlertmanager] requires it.
	DataDir string
	// Config is a complete Alertmanager configuration (YAML: route,
	// receivers, inhibit_rules, ...), written as it is; Alertmanager
	// validates it when it starts, so a bad config fails the start with
	// Alertmanager's own message. When Config is set, WebhookURL and the
	// intervals below are ignored. For notifications within a second or
	// two, give the root route group_wait: 0s and group_interval: 1s.
	Config string
	// WebhookURL receives every notification (send_resolved is on) under
	// the default config (used when Config is empty): one receiver named
	// "default", grouping by all labels. Without WebhookURL, [Alertmanager]
	// starts a [Receiver] and routes to it; [StartAlertmanager] drops
	// notifications.
	WebhookURL string
	// GroupWait, GroupInterval and RepeatInterval of the default config's
	// root route; defaults 0s, 1s and 1h, tuned for tests that want
	// notifications fast.
	GroupWait      time.Duration
	GroupInterval  time.Duration
	RepeatInterval time.Duration
	ExtraArgs      []string
}

// AlertmanagerConfigFile renders the default configuration file for cfg
// (cfg.Config, when set, is used instead by [StartAlertmanager]).
func AlertmanagerConfigFile(cfg AlertmanagerOptions) ([]byte, error) {
	var hooks []webhook
	if cfg.WebhookURL != "" {
		hooks = []webhook{{url: cfg.WebhookURL}}
	}
	return defaultAlertmanagerConfig(hooks, cfg.GroupWait, cfg.GroupInterval, cfg.RepeatInterval)
}

// webhook is one webhook of a generated configuration; a token is sent
// as Authorization: Bearer.
type webhook struct{ url, token string }

// defaultAlertmanagerConfig routes everything, grouped by all labels, to
// one receiver "default" with a webhook per URL.
func defaultAlertmanagerConfig(hooks []webhook, gw, gi, ri time.Duration) ([]byte, error) {
	if gi <= 0 {
		gi = time.Second
	}
	if ri <= 0 {
		ri = time.Hour
	}
	receiver := map[string]any{"name": "default"}
	var configs []any
	for _, h := range hooks {
		c := map[string]any{"url": h.url, "send_resolved": true}
		if h.token != "" {
			c["http_config"] = map[string]any{"authorization": map[string]any{"type": "Bearer", "credentials": h.token}}
		}
		configs = append(configs, c)
	}
	if len(configs) > 0 {
		receiver["webhook_configs"] = configs
	}
	doc := map[string]any{
		"route": map[string]any{
			"receiver":        "default",
			"group_by":        []string{"..."},
			"group_wait":      model.Duration(gw).String(),
			"group_interval":  model.Duration(gi).String(),
			"repeat_interval": model.Duration(ri).String(),
		},
		"receivers": []any{receiver},
	}
	return json.MarshalIndent(doc, "", "  ")
}

// StartAlertmanager writes the configuration into cfg.DataDir, starts
// Alertmanager without clustering and waits until /-/ready answers 200.
func StartAlertmanager(ctx context.Context, cfg AlertmanagerOptions) (*Process, error) {
	if cfg.DataDir == "" {
		return nil, fmt.Errorf("promflowtest: AlertmanagerOptions.DataDir is required")
	}
	bin := cfg.Binary
	if bin == "" {
		var err error
		if bin, err = LookBinary("prometheus-alertmanager", "prometheus-alertmanager"); err != nil {
			if b2, err2 := LookBinary("alertmanager", "prometheus-alertmanager"); err2 == nil {
				bin, err = b2, nil
			} else {
				return nil, err
			}
		}
	}
	addr := cfg.Addr
	if addr == "" {
		var err error
		if addr, err = FreeAddr(); err != nil {
			return nil, err
		}
	}
	conf := []byte(cfg.Config)
	if cfg.Config == "" {
		var err error
		if conf, err = AlertmanagerConfigFile(cfg); err != nil {
			return nil, err
		}
	}
	confPath := filepath.Join(cfg.DataDir, "alertmanager.yml")
	if err := os.WriteFile(confPath, conf, 0o644); err != nil {
		return nil, fmt.Errorf("promflowtest: write config: %w", err)
	}
	args := []string{
		"--config.file=" + confPath,
		"--storage.path=" + filepath.Join(cfg.DataDir, "am"),
		"--web.listen-address=" + addr,
		"--cluster.listen-address=",
	}
	args = append(args, cfg.ExtraArgs...)
	return start(ctx, "alertmanager", bin, args, addr, "/-/ready")
}
