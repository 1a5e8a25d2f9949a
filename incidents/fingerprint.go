package incidents

import (
	"context"
	"fmt"
)

// MaxFingerprints is how many fingerprints one [Store.ByFingerprint] call
// takes.
const MaxFingerprints = 1000

// ByFingerprint returns, for each of the given Alertmanager fingerprints
// that opened an incident, the newest incident of that fingerprint (its
// latest firing episode), keyed by fingerprint. Fingerprints without an
// incident are absent from the map. It is how a firing alert, whose
// fingerprint is the hash of its label set (model.LabelSet.Fingerprint, as
// Alertmanager computes it), is linked to its incident. More than
// MaxFingerprints fingerprints is an [ErrInvalid] error.
func (s *Store) ByFingerprint(ctx context.Context, fingerprints []string) (map[string]Incident, error) {
	out := map[string]Incident{}
	if len(fingerprints) == 0 {
		return out, nil
	}
	if len(fingerprints) > MaxFingerprints {
		return nil, invalid("fingerprints", "at most %d per call", MaxFingerprints)
	}
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT ON (fingerprint) `+incidentColumns+`
		FROM incidents WHERE fingerprint = ANY($1::text[])
		ORDER BY fingerprint, starts_at DESC, created_at DESC`, fingerprints)
	if err != nil {
		return nil, fmt.Errorf("incidents: by fingerprint: %w", classify(err))
	}
	defer rows.Close()
	for rows.Next() {
		in, err := scanIncident(rows)
		if err != nil {
			return nil, fmt.Errorf("incidents: by fingerprint: %w", classify(err))
		}
		out[in.Fingerprint] = in
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("incidents: by fingerprint: %w", classify(err))
	}
	return out, nil
}
