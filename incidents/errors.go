package incidents

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
)

var (
	// ErrNotFound is returned when no incident has the given id.
	ErrNotFound = errors.New("incidents: incident not found")
	// ErrInvalid is matched (errors.Is) by every [*ValidationError]: the input
	// was rejected before anything was written.
	ErrInvalid = errors.New("incidents: invalid input")
	// ErrWrongState is matched (errors.Is) by every [*StateError].
	ErrWrongState = errors.New("incidents: wrong state for this action")
	// ErrUnavailable wraps errors that mean the database could not be
	// reached (connection refused or lost, pool closed, server shutting
	// down). The HTTP handlers answer them with 503.
	ErrUnavailable = errors.New("incidents: database unavailable")

	// ErrReadOnly is matched by errors from writes that the database refused
	// because the role may not write (permission denied) or the database or
	// transaction is read-only, by the 503 answers of handlers running with
	// [HandlerOptions].ReadOnly, and by [Migrate] when a migration is due and
	// the role cannot apply it.
	ErrReadOnly = errors.New("incidents: read-only")

	// ErrMigrationChanged is returned by Migrate when a migration recorded as
	// applied differs from the embedded one of the same version: the schema
	// in the database is not the one this code expects, and applying later
	// migrations on top of it could fail or corrupt data.
	ErrMigrationChanged = errors.New("incidents: an applied migration differs from the embedded one")
)

// StateError reports a lifecycle action that the incident's current status
// does not allow, such as acknowledging a resolved incident. Use errors.As to
// get it, or errors.Is(err, ErrWrongState).
type StateError struct {
	ID     string
	Action Action
	From   Status // the status the incident was in
}

func (e *StateError) Error() string {
	return fmt.Sprintf("incidents: cannot %s incident %s: it is %s", e.Action, e.ID, e.From)
}

// Is makes errors.Is(err, ErrWrongState) true.
func (e *StateError) Is(target error) bool { return target == ErrWrongState }

// ValidationError reports one rejected input field. It matches [ErrInvalid].
type ValidationError struct {
	Field  string
	Reason string
}

func (e *ValidationError) Error() string {
	if e.Field == "" {
		return "incidents: invalid input: " + e.Reason
	}
	return fmt.Sprintf("incidents: invalid %s: %s", e.Field, e.Reason)
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

func invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// timeRangeConstraint is schema version 5's check on the time columns.
const timeRangeConstraint = "incidents_times_within_years_1_to_9999"

// unavailableError keeps the driver's error for logs and errors.As while
// matching ErrUnavailable.
type unavailableError struct{ err error }

func (e *unavailableError) Error() string        { return "incidents: database unavailable: " + e.err.Error() }
func (e *unavailableError) Unwrap() error        { return e.err }
func (e *unavailableError) Is(target error) bool { return target == ErrUnavailable }

// readOnlyError keeps the driver's error while matching ErrReadOnly.
type readOnlyError struct{ err error }

func (e *readOnlyError) Error() string        { return "incidents: read-only: " + e.err.Error() }
func (e *readOnlyError) Unwrap() error        { return e.err }
func (e *readOnlyError) Is(target error) bool { return target == ErrReadOnly }

// classify marks connectivity failures with ErrUnavailable, refused writes
// with ErrReadOnly, values too long for an adopted table's column as
// invalid input, and leaves other errors (SQL errors, cancellation, our own
// typed errors) as they are.
func classify(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrInvalid) || errors.Is(err, ErrWrongState) ||
		errors.Is(err, ErrUnavailable) || errors.Is(err, ErrReadOnly) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case len(pgErr.Code) >= 2 && pgErr.Code[:2] == "08", // connection exception
			pgErr.Code == "57P01", pgErr.Code == "57P02", pgErr.Code == "57P03", // shutdown, cannot connect now
			pgErr.Code == "53300": // too many connections
			return &unavailableError{err}
		case pgErr.Code == "42501", // insufficient_privilege
			pgErr.Code == "25006": // read_only_sql_transaction
			return &readOnlyError{err}
		case pgErr.Code == "22001": // string_data_right_truncation: a varchar(n) of an adopted table
			return invalid("", "a value is longer than the database column allows")
		case pgErr.Code == "23514" && pgErr.ConstraintName == timeRangeConstraint: // check_violation
			return invalid("", "a time of the incident is outside years 1 to 9999 (UTC), which this package cannot store; the incident was written before schema version 5")
		}
		return err
	}
	// Anything else from the driver is a connection-level failure: dial
	// errors, a closed pool, a connection that died mid-query.
	return &unavailableError{err}
}
