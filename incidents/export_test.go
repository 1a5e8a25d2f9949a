package incidents

import "context"

// NumericFloat exposes numericFloat to the external tests, which hold the
// database helpers.
var NumericFloat = numericFloat

// SlotOf bins a duration as the window edges of s's analytics do.
func SlotOf(ctx context.Context, s *Store, seconds float64) (int32, error) {
	e, err := s.slotEdges(ctx)
	if err != nil {
		return 0, err
	}
	return e.slot(seconds), nil
}
