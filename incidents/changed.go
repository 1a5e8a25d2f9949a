package incidents

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// MaxChangedLimit bounds [Store.ChangedSince]'s limit.
const MaxChangedLimit = 10000

// ChangedSince returns up to limit incidents whose updated_at is at or
// after since, oldest change first (then by id). A change feed subscriber
// that got an [EventResync] calls it with the updated_at of the last event
// it saw to catch up with the changes made while it was disconnected.
// Every lifecycle call and the intake set updated_at; a row changed by
// other SQL that leaves updated_at as it was is not found. Rows with an
// infinite updated_at are skipped.
func (s *Store) ChangedSince(ctx context.Context, since time.Time, limit int) ([]Incident, error) {
	if limit < 1 || limit > MaxChangedLimit {
		return nil, invalid("limit", "must be between 1 and %d", MaxChangedLimit)
	}
	rows, err := s.pool.Query(ctx, "SELECT "+incidentColumns+` FROM incidents
		WHERE updated_at >= $1 AND isfinite(updated_at) ORDER BY updated_at, id LIMIT $2`, since, limit)
	if err != nil {
		return nil, fmt.Errorf("incidents: changed since: %w", classify(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Incident, error) { return scanIncident(r) })
	if err != nil {
		return nil, fmt.Errorf("incidents: changed since: %w", classify(err))
	}
	return out, nil
}
