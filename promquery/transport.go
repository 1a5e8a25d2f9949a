package promquery

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Sentinel errors; test for them with errors.Is.
var (
	// ErrResponseTooLarge reports that a response body passed
	// Options.MaxResponseBytes; reading stopped at the cap.
	ErrResponseTooLarge = errors.New("promquery: response too large")
	// ErrBadResponse reports a 2xx answer that is not a well-formed
	// Prometheus API answer (malformed or truncated JSON, missing fields).
	ErrBadResponse = errors.New("promquery: malformed response")
	// ErrUnexpectedResultType reports a query whose result type is not the
	// one the call expects, e.g. a matrix for [Client.Vector].
	ErrUnexpectedResultType = errors.New("promquery: unexpected result type")
	// ErrInvalidArgument reports an argument rejected before any request.
	ErrInvalidArgument = errors.New("promquery: invalid argument")
)

// ErrorType is the "errorType" member of a Prometheus error answer.
type ErrorType string

// The error types the Prometheus HTTP API sends.
const (
	ErrorTimeout       ErrorType = "timeout"
	ErrorCanceled      ErrorType = "canceled"
	ErrorExecution     ErrorType = "execution"
	ErrorBadData       ErrorType = "bad_data"
	ErrorInternal      ErrorType = "internal"
	ErrorUnavailable   ErrorType = "unavailable"
	ErrorNotFound      ErrorType = "not_found"
	ErrorNotAcceptable ErrorType = "not_acceptable"
)

// maxErrorBody bounds how much of an error answer is read and kept.
const maxErrorBody = 64 << 10

// APIError is returned for every non-2xx answer, and for a 2xx answer whose
// status is "error". Get it with errors.As.
type APIError struct {
	// StatusCode is the HTTP status code.
	StatusCode int
	// Type is Prometheus' errorType, empty when the body was not a
	// Prometheus JSON answer.
	Type ErrorType
	// Message is Prometheus' "error" member, or the HTTP status text.
	Message string
	// Body holds the start (at most 64 KiB) of the body when it was not a
	// Prometheus JSON answer, e.g. an HTML page from a proxy.
	Body []byte
	// Warnings and Infos that came with the error answer, if any.
	Warnings, Infos []string
	// RetryAfter is the wait the server asked for in its Retry-After
	// header (seconds or an HTTP date), zero when it sent none.
	RetryAfter time.Duration
}

// Error implements error.
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("promquery: server returned ")
	if e.StatusCode != 0 {
		b.WriteString(strconv.Itoa(e.StatusCode))
	} else {
		b.WriteString("status error")
	}
	if e.Type != "" {
		b.WriteString(" (")
		b.WriteString(string(e.Type))
		b.WriteString(")")
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if len(e.Body) > 0 {
		body := e.Body
		if len(body) > 200 {
			body = body[:200]
		}
		b.WriteString(": ")
		b.WriteString(strconv.Quote(string(body)))
	}
	return b.String()
}

// Retryable reports whether the answer is one [RetryPolicy] retries: 429,
// 503 or a Prometheus timeout.
func (e *APIError) Retryable() bool {
	return e.StatusCode == http.StatusTooManyRequests ||
		e.StatusCode == http.StatusServiceUnavailable ||
		e.Type == ErrorTimeout
}

// BadQuery reports whether the server refused the query itself, which no
// retry or wait cures: Prometheus' bad_data (HTTP 400), and a 400 or 422
// answer that is not Prometheus' "execution" type (whose causes can depend
// on the data, such as duplicate series). VictoriaMetrics answers a query
// that does not parse, or that exceeds a limit such as
// -search.maxPointsPerTimeseries, with 422 and errorType "422": it names
// its error types by HTTP status.
func (e *APIError) BadQuery() bool {
	return e.Type == ErrorBadData || e.StatusCode == http.StatusBadRequest ||
		e.StatusCode == http.StatusUnprocessableEntity && e.Type != ErrorExecution
}

// newAPIError builds an APIError from an error answer's body.
func newAPIError(status int, body []byte) *APIError {
	e := &APIError{StatusCode: status}
	var env struct {
		Status    string    `json:"status"`
		ErrorType ErrorType `json:"errorType"`
		Error     string    `json:"error"`
		Warnings  []string  `json:"warnings"`
		Infos     []string  `json:"infos"`
	}
	if err := json.Unmarshal(body, &env); err == nil && env.Status != "" {
		e.Type, e.Message, e.Warnings, e.Infos = env.ErrorType, env.Error, env.Warnings, env.Infos
		return e
	}
	e.Message = http.StatusText(status)
	e.Body = bytes.Clone(body)
	return e
}

// capReader fails with ErrResponseTooLarge once more than n bytes were read.
type capReader struct {
	r    io.Reader
	left int64 // bytes still allowed
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left < 0 {
		return 0, ErrResponseTooLarge
	}
	if int64(len(p)) > c.left+1 {
		p = p[:c.left+1]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	if c.left < 0 {
		return 0, ErrResponseTooLarge
	}
	return n, err
}

// do sends a request to path and hands a 2xx body to decode. queryLike
// requests are sent as POST forms with GET fallback. Retryable answers are
// retried per the client's RetryPolicy.
func (c *Client) do(ctx context.Context, path string, params url.Values, queryLike bool, decode func(io.Reader) error) error {
	backoff := c.retry.InitialBackoff
	for attempt := 1; ; attempt++ {
		err := c.once(ctx, path, params, queryLike, decode)
		var apiErr *APIError
		if err == nil || !errors.As(err, &apiErr) || !apiErr.Retryable() || attempt >= c.retry.MaxAttempts {
			return err
		}
		wait := min(backoff, c.retry.MaxBackoff)
		if ra := apiErr.RetryAfter; ra > 0 {
			// Never ask again sooner than the server said; if it said
			// longer than MaxBackoff, give up now with its answer (its
			// RetryAfter tells the caller when to come back).
			if ra > c.retry.MaxBackoff {
				return err
			}
			wait = ra
		}
		backoff = min(backoff*2, c.retry.MaxBackoff)
		c.log.DebugContext(ctx, "promquery: retrying", "path", path, "attempt", attempt, "wait", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("promquery: %s: giving up retry: %w (last error: %w)", path, ctx.Err(), err)
		case <-t.C:
		}
	}
}

func parseRetryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	if s, err := strconv.Atoi(h); err == nil {
		if s < 0 {
			return 0
		}
		return time.Duration(min(s, 1<<20)) * time.Second // no overflow
	}
	if t, err := http.ParseTime(h); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// once performs a single attempt (plus the GET fallback).
func (c *Client) once(ctx context.Context, path string, params url.Values, queryLike bool, decode func(io.Reader) error) error {
	post := queryLike && !c.noPOST.Load()
	resp, err := c.send(ctx, path, params, post)
	if err != nil {
		return err
	}
	if post && (resp.StatusCode == http.StatusMethodNotAllowed ||
		resp.StatusCode == http.StatusNotImplemented ||
		resp.StatusCode == http.StatusForbidden) {
		drain(resp.Body)
		// 405 and 501 say the server (or a proxy) does not take POST: use
		// GET from now on. A 403 may be an authorization that has since
		// expired or a rule on this one request: retry it with GET, but
		// keep trying POST (long queries need it, and query text in URLs
		// ends up in access logs).
		if resp.StatusCode != http.StatusForbidden {
			c.noPOST.Store(true)
		}
		c.log.DebugContext(ctx, "promquery: POST refused, falling back to GET", "path", path, "status", resp.StatusCode)
		resp, err = c.send(ctx, path, params, false)
		if err != nil {
			return err
		}
	}
	defer resp.Body.Close()
	var body io.Reader = resp.Body
	if c.max > 0 {
		body = &capReader{r: resp.Body, left: c.max}
	}
	if resp.StatusCode/100 != 2 {
		b, rerr := io.ReadAll(io.LimitReader(body, maxErrorBody))
		if rerr != nil && ctx.Err() != nil {
			return fmt.Errorf("promquery: %s: %w", path, ctx.Err())
		}
		e := newAPIError(resp.StatusCode, b)
		e.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		return e
	}
	if err := decode(body); err != nil {
		if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
			return fmt.Errorf("promquery: %s: %w (%w)", path, cerr, err)
		}
		var apiErr *APIError
		if errors.As(err, &apiErr) {
			if apiErr.StatusCode == 0 {
				apiErr.StatusCode = resp.StatusCode
			}
			return apiErr
		}
		return fmt.Errorf("promquery: %s: %w", path, err)
	}
	return nil
}

func (c *Client) send(ctx context.Context, path string, params url.Values, post bool) (*http.Response, error) {
	u := *c.base
	u.Path += path
	var req *http.Request
	var err error
	if post {
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(params.Encode()))
		if err == nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	} else {
		if len(params) > 0 {
			u.RawQuery = params.Encode()
		}
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	}
	if err != nil {
		return nil, fmt.Errorf("promquery: %s: %w", path, err)
	}
	for k, vs := range c.headers {
		if http.CanonicalHeaderKey(k) == "Content-Type" {
			continue
		}
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
			return nil, fmt.Errorf("promquery: %s: %w (%w)", path, cerr, err)
		}
		return nil, fmt.Errorf("promquery: %s: %w", path, err)
	}
	return resp, nil
}

func drain(rc io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(rc, 4<<10))
	_ = rc.Close()
}
