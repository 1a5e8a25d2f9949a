package incidents

import (
	"encoding/json"
	"strconv"
	"time"
)

// TimeLayout is the form of every time in this package's JSON: JavaScript's
// Date.prototype.toISOString(), UTC with exactly three fractional digits and
// a Z (2026-01-02T03:04:05.000Z), as the original platform's clients expect.
// Finer digits are cut, as a JavaScript Date holds milliseconds.
const TimeLayout = "2006-01-02T15:04:05.000Z"

// FormatTime formats t in [TimeLayout]. A year outside 0..9999 (only rows
// written before schema version 5 can hold one) is written as toISOString
// does: a sign and six digits (+010000-01-01T00:00:00.000Z).
func FormatTime(t time.Time) string { return string(appendTime(nil, t)) }

func appendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		sign := byte('+')
		if y < 0 {
			sign, y = '-', -y
		}
		digits := strconv.Itoa(1000000 + y) // "1" and six digits
		b = append(append(b, sign), digits[1:]...)
		return t.AppendFormat(b, "-01-02T15:04:05.000Z")
	}
	return t.AppendFormat(b, TimeLayout)
}

// jsonTime is a time.Time that marshals in TimeLayout.
type jsonTime time.Time

// MarshalJSON implements json.Marshaler.
func (t jsonTime) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, len(TimeLayout)+2)
	b = append(b, '"')
	b = appendTime(b, time.Time(t))
	return append(b, '"'), nil
}

func jsonTimePtr(t *time.Time) *jsonTime {
	if t == nil {
		return nil
	}
	j := jsonTime(*t)
	return &j
}

// MarshalJSON writes the incident with its times in [TimeLayout].
func (in Incident) MarshalJSON() ([]byte, error) {
	type plain Incident // without this method
	return json.Marshal(struct {
		plain
		CreatedAt      jsonTime  `json:"created_at"`
		UpdatedAt      jsonTime  `json:"updated_at"`
		AcknowledgedAt *jsonTime `json:"acknowledged_at"`
		ResolvedAt     *jsonTime `json:"resolved_at"`
		StartsAt       *jsonTime `json:"starts_at,omitempty"`
		AlertStartsAt  *jsonTime `json:"alert_starts_at,omitempty"`
		AlertEndsAt    *jsonTime `json:"alert_ends_at,omitempty"`
	}{plain(in), jsonTime(in.CreatedAt), jsonTime(in.UpdatedAt), jsonTimePtr(in.AcknowledgedAt),
		jsonTimePtr(in.ResolvedAt), jsonTimePtr(in.StartsAt), jsonTimePtr(in.StartsAt), jsonTimePtr(in.AlertEndsAt)})
}

// MarshalJSON writes the detail with its times in [TimeLayout].
func (d Detail) MarshalJSON() ([]byte, error) {
	type plain Detail
	return json.Marshal(struct {
		plain
		CreatedAt      jsonTime  `json:"created_at"`
		AcknowledgedAt *jsonTime `json:"acknowledged_at"`
		ResolvedAt     *jsonTime `json:"resolved_at"`
		AlertStartsAt  *jsonTime `json:"alert_starts_at,omitempty"`
		AlertEndsAt    *jsonTime `json:"alert_ends_at,omitempty"`
	}{plain(d), jsonTime(d.CreatedAt), jsonTimePtr(d.AcknowledgedAt), jsonTimePtr(d.ResolvedAt),
		jsonTimePtr(d.AlertStartsAt), jsonTimePtr(d.AlertEndsAt)})
}

// MarshalJSON writes the stats with their window in [TimeLayout].
func (s Stats) MarshalJSON() ([]byte, error) {
	type plain Stats
	return json.Marshal(struct {
		plain
		From *jsonTime `json:"from"`
		To   *jsonTime `json:"to"`
	}{plain(s), jsonTimePtr(s.From), jsonTimePtr(s.To)})
}
