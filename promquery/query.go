package promquery

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"time"

	"github.com/prometheus/common/model"
)

// Result is the answer of [Client.Query], whose result type is only known at
// run time. Type says which one field is set.
type Result struct {
	Type   model.ValueType
	Vector model.Vector
	Matrix model.Matrix
	Scalar model.Scalar
	String model.String
}

// Value returns the result as a model.Value, for code written against the
// prometheus/common/model interfaces.
func (r Result) Value() model.Value {
	switch r.Type {
	case model.ValVector:
		return r.Vector
	case model.ValMatrix:
		return r.Matrix
	case model.ValScalar:
		s := r.Scalar
		return &s
	case model.ValString:
		s := r.String
		return &s
	}
	return nil
}

func (c *Client) query(ctx context.Context, path string, v url.Values, onSeries func(*model.SampleStream) error) (*queryResult, error) {
	var res *queryResult
	err := c.do(ctx, path, v, true, func(body io.Reader) error {
		var err error
		res, err = decodeQuery(body, onSeries)
		return err
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

func wantType(res *queryResult, want model.ValueType) error {
	if res.typ != want {
		return fmt.Errorf("%w: want %s, got %s", ErrUnexpectedResultType, want, res.typ)
	}
	return nil
}

// Query runs an instant query whose result type is not known in advance
// (ts zero means "now" on the server). It handles every result type,
// including strings and the matrix of a range-vector selector such as
// `up[5m]`.
func (c *Client) Query(ctx context.Context, query string, ts time.Time, opts ...QueryOption) (Result, Meta, error) {
	res, err := c.query(ctx, "/api/v1/query", instantParams(query, ts, opts), nil)
	if err != nil {
		return Result{}, Meta{}, err
	}
	return Result{Type: res.typ, Vector: res.vector, Matrix: res.matrix, Scalar: res.scalar, String: res.str}, res.meta, nil
}

// Vector runs an instant query that must return an instant vector (ts zero
// means "now"). Any other result type is an error matching
// [ErrUnexpectedResultType]; the answer's Meta is still returned.
func (c *Client) Vector(ctx context.Context, query string, ts time.Time, opts ...QueryOption) (model.Vector, Meta, error) {
	res, err := c.query(ctx, "/api/v1/query", instantParams(query, ts, opts), nil)
	if err != nil {
		return nil, Meta{}, err
	}
	if err := wantType(res, model.ValVector); err != nil {
		return nil, res.meta, err
	}
	return res.vector, res.meta, nil
}

// Scalar runs an instant query that must return a scalar, such as
// `scalar(sum(up))` or `time()` (ts zero means "now").
func (c *Client) Scalar(ctx context.Context, query string, ts time.Time, opts ...QueryOption) (model.Scalar, Meta, error) {
	res, err := c.query(ctx, "/api/v1/query", instantParams(query, ts, opts), nil)
	if err != nil {
		return model.Scalar{}, Meta{}, err
	}
	if err := wantType(res, model.ValScalar); err != nil {
		return model.Scalar{}, res.meta, err
	}
	return res.scalar, res.meta, nil
}

// Matrix runs a range query and returns every series at once. For large
// answers prefer [Client.StreamMatrix], which holds one series at a time.
func (c *Client) Matrix(ctx context.Context, query string, r Range, opts ...QueryOption) (model.Matrix, Meta, error) {
	v, err := rangeParams(query, r, opts)
	if err != nil {
		return nil, Meta{}, err
	}
	res, err := c.query(ctx, "/api/v1/query_range", v, nil)
	if err != nil {
		return nil, Meta{}, err
	}
	if err := wantType(res, model.ValMatrix); err != nil {
		return nil, res.meta, err
	}
	return res.matrix, res.meta, nil
}

// StreamMatrix runs a range query and calls fn with each series as soon as
// it is decoded, so memory holds one series rather than the whole answer.
// fn may keep the series. If fn returns an error, reading stops and
// StreamMatrix returns that error (wrapped). Warnings and infos that
// Prometheus writes after the result are returned in Meta once the whole
// answer was read.
func (c *Client) StreamMatrix(ctx context.Context, query string, r Range, fn func(*model.SampleStream) error, opts ...QueryOption) (Meta, error) {
	if fn == nil {
		return Meta{}, fmt.Errorf("%w: nil callback", ErrInvalidArgument)
	}
	v, err := rangeParams(query, r, opts)
	if err != nil {
		return Meta{}, err
	}
	res, err := c.query(ctx, "/api/v1/query_range", v, fn)
	if err != nil {
		return Meta{}, err
	}
	if err := wantType(res, model.ValMatrix); err != nil {
		return res.meta, err
	}
	return res.meta, nil
}
