package mockexporter

import (
	"errors"
	"fmt"
)

// Sentinel errors; the registry wraps them with the offending name, so test
// them with errors.Is.
var (
	// ErrUnknownMetric: no metric family of that name is declared.
	ErrUnknownMetric = errors.New("mockexporter: unknown metric")
	// ErrUnknownSeries: the family has no series with those label values.
	ErrUnknownSeries = errors.New("mockexporter: unknown series")
	// ErrUnknownScenario: no scenario has that id.
	ErrUnknownScenario = errors.New("mockexporter: unknown scenario")
	// ErrDuplicateMetric: a family of that name is already declared.
	ErrDuplicateMetric = errors.New("mockexporter: metric already declared")
	// ErrWrongType: the operation does not apply to the metric's type (for
	// example Observe on a gauge).
	ErrWrongType = errors.New("mockexporter: operation not valid for this metric type")
	// ErrLimit: a limit or budget (series, bytes, exposition size,
	// families, scenarios) would be exceeded; see [LimitError].
	ErrLimit = errors.New("mockexporter: limit reached")
	// ErrInvalid: the input was rejected; every *ValidationError matches
	// it with errors.Is (errors.As gives the field and reason).
	ErrInvalid = errors.New("mockexporter: invalid input")
)

// ValidationError reports an input that was rejected: a value out of the
// metric's range, a bad label value, a malformed source. Nothing was changed.
type ValidationError struct {
	Field  string // what was wrong, e.g. "value", "labels.device", "source.period"
	Reason string
	// Err is the underlying error, if any (e.g. the JSON or YAML decoder's);
	// Reason already includes its text.
	Err error
}

// Unwrap returns Err.
func (e *ValidationError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrInvalid) true for every ValidationError.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

func (e *ValidationError) Error() string {
	if e.Field == "" {
		return "mockexporter: invalid input: " + e.Reason
	}
	return "mockexporter: invalid " + e.Field + ": " + e.Reason
}

func validationf(field, format string, args ...any) error {
	return &ValidationError{Field: field, Reason: fmt.Sprintf(format, args...)}
}
