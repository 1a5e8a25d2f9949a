package servicemetrics

import (
	"testing"
	"time"

	"github.com/promflow/promflow/incidents"
)

// TestCatchUpKind: an incident caught up after a resync is announced by
// its current state; "opened" only for one created in the gap and open.
func TestCatchUpKind(t *testing.T) {
	since := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	before, after := since.Add(-time.Minute), since.Add(time.Second)
	cases := []struct {
		status  incidents.Status
		created time.Time
		want    incidents.EventKind
	}{
		{incidents.StatusOpen, after, incidents.EventOpened},
		{incidents.StatusOpen, since, incidents.EventOpened},
		{incidents.StatusOpen, before, incidents.EventUpdated},
		{incidents.StatusAcknowledged, after, incidents.EventAcknowledged},
		{incidents.StatusResolved, before, incidents.EventResolved},
		{incidents.StatusClosed, before, incidents.EventClosed},
		{incidents.Status("weird"), after, incidents.EventUpdated},
	}
	for _, c := range cases {
		in := &incidents.Incident{Status: c.status, CreatedAt: c.created}
		if got := catchUpKind(in, since); got != c.want {
			t.Errorf("catchUpKind(%s, created %v) = %s, want %s", c.status, c.created.Sub(since), got, c.want)
		}
	}
}
