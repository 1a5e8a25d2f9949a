package servicemetrics

import (
	"context"
	"time"

	"github.com/promflow/promflow/incidents"
)

const (
	// catchUpMargin is how far before the last change seen a catch-up
	// looks, for clock differences between this process (lifecycle
	// timestamps) and PostgreSQL (rows written by SQL): a change may be
	// published twice, never lost.
	catchUpMargin = 5 * time.Second
	// catchUpLimit bounds the incidents published after one resync; past
	// it, clients have the resync event to refetch the REST API.
	catchUpLimit = 1000
)

// catchUp publishes, after a resync, the incidents changed since seen
// (minus catchUpMargin) with catch_up set, and returns the new mark. Each
// is published as its current state: kind opened for an incident created
// in the gap and still open, else the kind of its status (acknowledged,
// resolved, closed), or updated.
func (s *Server) catchUp(ctx context.Context, seen time.Time) time.Time {
	st := s.dbp.Load()
	if st == nil {
		return seen
	}
	since := seen.Add(-catchUpMargin)
	qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	changed, err := st.store.ChangedSince(qctx, since, catchUpLimit)
	if err != nil {
		// The feed will deliver another resync when it reconnects again;
		// until then clients have this one to refetch.
		s.log.Warn("change feed catch-up failed", "err", err)
		return seen
	}
	if len(changed) == catchUpLimit {
		s.log.Warn("change feed catch-up truncated: clients should refetch", "published", catchUpLimit)
	}
	for i := range changed {
		in := &changed[i]
		s.publishEvent(incidents.Event{Kind: catchUpKind(in, since), ID: in.ID, Status: in.Status, Source: in.Source, Incident: in}, true)
		if in.UpdatedAt.After(seen) {
			seen = in.UpdatedAt
		}
	}
	if len(changed) > 0 {
		s.log.Info("change feed caught up after reconnect", "incidents", len(changed))
	}
	return seen
}

func catchUpKind(in *incidents.Incident, since time.Time) incidents.EventKind {
	switch in.Status {
	case incidents.StatusOpen:
		if !in.CreatedAt.Before(since) {
			return incidents.EventOpened
		}
		return incidents.EventUpdated
	case incidents.StatusAcknowledged:
		return incidents.EventAcknowledged
	case incidents.StatusResolved:
		return incidents.EventResolved
	case incidents.StatusClosed:
		return incidents.EventClosed
	}
	return incidents.EventUpdated
}
