package promflowtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// Memory values of the alert loop: above the HighMemoryUsage threshold
// (90), then back to the seed's value.
const (
	alertMemory  = "95"
	normalMemory = "78"
)

// seedIncident is a row of the details answer, or an incident in a
// WebSocket event.
type seedIncident struct {
	ID, Title, Source, Status string
}

func incidentOf(row map[string]json.RawMessage) seedIncident {
	return seedIncident{ID: jsonText(row["id"]), Title: jsonText(row["title"]), Source: jsonText(row["source"]), Status: jsonText(row["status"])}
}

// alertStage runs the alert → incident → WebSocket loop.
func (s *seedRun) alertStage(ctx context.Context) {
	to := s.t.AlertTimeout
	var inc seedIncident
	s.check(ctx, StageAlertLoop, "Alert Opens Incident (REST)", to, func(ctx context.Context) (string, error) {
		var err error
		inc, err = s.alertOpens(ctx)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("Incident ouvert: %q (service: %s)", shorten(inc.Title, 60), inc.Source), nil
	})
	s.check(ctx, StageAlertLoop, "Incident Opened Event (WebSocket)", to, func(ctx context.Context) (string, error) {
		m, err := s.incidentEvent(ctx, inc.ID, "open")
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("Message %q reçu (kind: %s)", m.Type, jsonText(m.Data["kind"])), nil
	})
	s.check(ctx, StageAlertLoop, "Incident Resolved (REST)", to, func(ctx context.Context) (string, error) {
		if inc.ID == "" {
			return "non vérifié: aucun incident ouvert", errCheck
		}
		start := time.Now()
		if err := s.simulateMemory(ctx, normalMemory); err != nil {
			return "", err
		}
		_, err := s.waitIncident(ctx, func(i seedIncident) bool { return i.ID == inc.ID && i.Status == "resolved" })
		if err != nil {
			return "incident " + inc.ID + " non résolu", err
		}
		return fmt.Sprintf("Mémoire à %s%%: incident résolu en %s", normalMemory, since(start)), nil
	})
	s.check(ctx, StageAlertLoop, "Incident Resolved Event (WebSocket)", to, func(ctx context.Context) (string, error) {
		m, err := s.incidentEvent(ctx, inc.ID, "resolved")
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("Message %q reçu (kind: %s)", m.Type, jsonText(m.Data["kind"])), nil
	})
}

// alertOpens simulates high memory and waits for a new open incident of
// the alert's service in the details answer.
func (s *seedRun) alertOpens(ctx context.Context) (seedIncident, error) {
	rows, err := s.seedList(ctx, "/api/metrics/incidents/details")
	if err != nil {
		return seedIncident{}, err
	}
	before := make(map[string]bool, len(rows))
	for _, row := range rows {
		before[incidentOf(row).ID] = true
	}
	if err := s.simulateMemory(ctx, alertMemory); err != nil {
		return seedIncident{}, err
	}
	inc, err := s.waitIncident(ctx, func(i seedIncident) bool {
		return !before[i.ID] && i.Source == s.t.AlertService && i.Status == "open"
	})
	if err != nil {
		return seedIncident{}, fmt.Errorf("mémoire à %s%%, aucun incident ouvert pour %q: %w", alertMemory, s.t.AlertService, err)
	}
	return inc, nil
}

func (s *seedRun) simulateMemory(ctx context.Context, v string) error {
	a, err := s.do(ctx, http.MethodPost, s.t.MockURL+"/simulate/memory-usage/"+v)
	if err != nil {
		return err
	}
	if a.code != http.StatusOK {
		return fmt.Errorf("POST /simulate/memory-usage/%s: HTTP %d - %s", v, a.code, shorten(string(a.body), 80))
	}
	return nil
}

// waitIncident polls the details answer until an incident satisfies ok.
func (s *seedRun) waitIncident(ctx context.Context, ok func(seedIncident) bool) (seedIncident, error) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		rows, err := s.seedList(ctx, "/api/metrics/incidents/details")
		last = err
		for _, row := range rows {
			if inc := incidentOf(row); ok(inc) {
				return inc, nil
			}
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return seedIncident{}, fmt.Errorf("%w (dernière erreur: %w)", ctx.Err(), last)
			}
			return seedIncident{}, ctx.Err()
		case <-tick.C:
		}
	}
}

// incidentEvent waits for an "incident" WebSocket message about incident
// id (or, with no id, about the alert's service) whose status is status.
func (s *seedRun) incidentEvent(ctx context.Context, id, status string) (wsMessage, error) {
	if s.ws == nil {
		return wsMessage{}, errNoWebSocket
	}
	m, err := s.ws.next(ctx, func(m wsMessage) bool {
		if m.Type != "incident" {
			return false
		}
		var inc seedIncident
		if raw, ok := m.Data["incident"]; ok {
			var row map[string]json.RawMessage
			_ = json.Unmarshal(raw, &row)
			inc = incidentOf(row)
		}
		evID, evStatus := jsonText(m.Data["id"]), jsonText(m.Data["status"])
		if evID == "" {
			evID = inc.ID
		}
		if evStatus == "" {
			evStatus = inc.Status
		}
		if id == "" {
			return inc.Source == s.t.AlertService && evStatus == status
		}
		return evID == id && evStatus == status
	})
	if err != nil {
		return m, fmt.Errorf("aucun message \"incident\" (status %s): %w", status, err)
	}
	return m, nil
}
