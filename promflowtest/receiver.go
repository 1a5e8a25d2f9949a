package promflowtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Notification is one webhook message Alertmanager sent (payload version
// 4), with the path it was posted to.
type Notification struct {
	// Path is the URL path the notification was posted to, e.g. "/pager"
	// for a webhook_configs url of [ReceiverServer.URL]+"/pager".
	Path string `json:"-"`
	// ReceivedAt is when the receiver recorded it.
	ReceivedAt time.Time `json:"-"`

	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Receiver          string            `json:"receiver"` // the receiver's name in the Alertmanager config
	Status            string            `json:"status"`   // "firing" or "resolved"
	Alerts            []WebhookAlert    `json:"alerts"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
}

// WebhookAlert is one alert of a [Notification].
type WebhookAlert struct {
	Status       string            `json:"status"` // "firing" or "resolved"
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// HasAlert reports whether the notification carries an alert with the
// given status ("" for any) whose labels include every label of match.
func (n Notification) HasAlert(status string, match Labels) bool {
	for _, a := range n.Alerts {
		if (status == "" || a.Status == status) && match.Matches(a.Labels) {
			return true
		}
	}
	return false
}

// String summarises the notification on one line, as waits report it.
func (n Notification) String() string {
	var alerts []string
	for _, a := range n.Alerts {
		alerts = append(alerts, a.Status+" "+Labels(a.Labels).String())
	}
	return fmt.Sprintf("%s %s receiver=%q [%s]", n.Path, n.Status, n.Receiver, strings.Join(alerts, ", "))
}

// ReceiverServer is a webhook receiver that records every notification
// posted to it, on any path. Its methods are safe for concurrent use.
type ReceiverServer struct {
	srv     *httptest.Server
	mu      sync.Mutex
	notes   []Notification
	changed chan struct{} // closed and replaced on every new notification
}

// Receiver starts a [ReceiverServer] on a loopback port, closed at cleanup.
// Point Alertmanager webhook_configs at its URL, or at URL()+"/name" to
// tell several receivers apart by [Notification.Path].
func Receiver(t testing.TB) *ReceiverServer {
	t.Helper()
	r := NewReceiver()
	t.Cleanup(r.Close)
	return r
}

// NewReceiver starts a [ReceiverServer]; call Close when done. Tests use
// [Receiver].
func NewReceiver() *ReceiverServer {
	r := &ReceiverServer{changed: make(chan struct{})}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serveHTTP))
	return r
}

// URL is the base URL of the receiver, e.g. http://127.0.0.1:41234.
func (r *ReceiverServer) URL() string { return r.srv.URL }

// Close shuts the receiver's server down; recorded notifications stay
// readable.
func (r *ReceiverServer) Close() { r.srv.Close() }

func (r *ReceiverServer) serveHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST an Alertmanager webhook payload", http.StatusMethodNotAllowed)
		return
	}
	var n Notification
	if err := json.NewDecoder(io.LimitReader(req.Body, 16<<20)).Decode(&n); err != nil {
		http.Error(w, "not an Alertmanager webhook payload: "+err.Error(), http.StatusBadRequest)
		return
	}
	n.Path, n.ReceivedAt = req.URL.Path, time.Now()
	r.mu.Lock()
	r.notes = append(r.notes, n)
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// Notifications returns a copy of every notification received so far, in
// order of arrival.
func (r *ReceiverServer) Notifications() []Notification {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Notification(nil), r.notes...)
}

// WaitNotification returns the first notification (already received or
// arriving before ctx ends) for which match returns true; a nil match
// accepts any. On timeout the error lists what the receiver got.
func (r *ReceiverServer) WaitNotification(ctx context.Context, match func(Notification) bool) (Notification, error) {
	seen := 0
	for {
		r.mu.Lock()
		notes, changed := r.notes, r.changed
		r.mu.Unlock()
		for ; seen < len(notes); seen++ {
			if match == nil || match(notes[seen]) {
				return notes[seen], nil
			}
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return Notification{}, fmt.Errorf("promflowtest: no matching notification: %w; %s", ctx.Err(), describeNotifications(notes))
		}
	}
}

func describeNotifications(notes []Notification) string {
	if len(notes) == 0 {
		return "the receiver got no notification at all"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "the receiver got %d:", len(notes))
	// The last ones say most about where a flow stopped.
	from := max(0, len(notes)-10)
	for _, n := range notes[from:] {
		b.WriteString("\n  " + n.String())
	}
	return b.String()
}
