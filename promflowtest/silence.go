package promflowtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// CreateSilence silences, in Alertmanager at baseURL, every alert whose
// labels include match (equality matchers, at least one) for d from now,
// and returns the silence's id. Silenced alerts show the state
// "suppressed" in [WaitAlertmanagerAlert] and are not notified.
func CreateSilence(ctx context.Context, baseURL string, match Labels, d time.Duration) (string, error) {
	if len(match) == 0 || d <= 0 {
		return "", fmt.Errorf("promflowtest: silence needs at least one label and a positive duration")
	}
	type matcher struct {
		Name    string `json:"name"`
		Value   string `json:"value"`
		IsRegex bool   `json:"isRegex"`
		IsEqual bool   `json:"isEqual"`
	}
	names := make([]string, 0, len(match))
	for k := range match {
		names = append(names, k)
	}
	sort.Strings(names)
	ms := make([]matcher, len(names))
	for i, k := range names {
		ms[i] = matcher{Name: k, Value: match[k], IsEqual: true}
	}
	now := time.Now().UTC()
	body, err := json.Marshal(map[string]any{
		"matchers": ms, "startsAt": now, "endsAt": now.Add(d),
		"createdBy": "promflowtest", "comment": "silenced by a test",
	})
	if err != nil {
		return "", fmt.Errorf("promflowtest: silence: %w", err)
	}
	var out struct {
		SilenceID string `json:"silenceID"`
	}
	if err := amDo(ctx, http.MethodPost, strings.TrimRight(baseURL, "/")+"/api/v2/silences", body, &out); err != nil {
		return "", err
	}
	return out.SilenceID, nil
}

// ExpireSilence ends the silence id in Alertmanager at baseURL.
func ExpireSilence(ctx context.Context, baseURL, id string) error {
	return amDo(ctx, http.MethodDelete, strings.TrimRight(baseURL, "/")+"/api/v2/silence/"+url.PathEscape(id), nil, nil)
}

// amDo sends one request to Alertmanager's API and decodes a 200 answer
// into out (when not nil).
func amDo(ctx context.Context, method, u string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("promflowtest: alertmanager %s: %w", method, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("promflowtest: alertmanager %s %s: %w", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("promflowtest: alertmanager %s %s: %w", method, u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("promflowtest: alertmanager %s %s: %s: %.300s", method, u, resp.Status, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("promflowtest: alertmanager %s %s: %w", method, u, err)
		}
	}
	return nil
}

// Silence silences every alert whose labels include match for d; see
// [CreateSilence].
func (a *AlertmanagerServer) Silence(ctx context.Context, match Labels, d time.Duration) (string, error) {
	return CreateSilence(ctx, a.URL, match, d)
}
