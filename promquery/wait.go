package promquery

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/common/model"
)

// poll calls try every interval until it reports done, fails for good, or
// ctx ends; then it returns ctx's error wrapped with the last failure.
func (c *Client) poll(ctx context.Context, what string, try func() (done bool, err error)) error {
	t := time.NewTicker(c.pollInterval)
	defer t.Stop()
	last := errors.New("condition not met")
	for {
		done, err := try()
		if done {
			return err
		}
		// An attempt cut short by the context says nothing new; keep the
		// reason seen before it.
		if err != nil && ctx.Err() == nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("promquery: waiting for %s: %w (last: %w)", what, ctx.Err(), last)
		case <-t.C:
		}
	}
}

// permanent reports errors that waiting cannot cure, such as a bad query.
func permanent(err error) bool {
	var apiErr *APIError
	return errors.As(err, &apiErr) && apiErr.BadQuery() ||
		errors.Is(err, ErrInvalidArgument) || errors.Is(err, ErrUnexpectedResultType)
}

// WaitTargetUp polls the active targets until one with label job=job (and
// instance=instance, unless instance is empty) has health "up", and returns
// it. It gives up when ctx ends, reporting the target's last scrape error if
// it was seen down. Bound it with a context deadline.
func (c *Client) WaitTargetUp(ctx context.Context, job, instance string) (ActiveTarget, error) {
	var found ActiveTarget
	err := c.poll(ctx, fmt.Sprintf("target job=%q instance=%q up", job, instance), func() (bool, error) {
		ts, _, err := c.Targets(ctx, TargetsActive)
		if err != nil {
			return permanent(err), err
		}
		var last error = errors.New("no such target")
		for _, t := range ts.Active {
			if string(t.Labels[model.JobLabel]) != job ||
				instance != "" && string(t.Labels[model.InstanceLabel]) != instance {
				continue
			}
			if t.Health == HealthUp {
				found = t
				return true, nil
			}
			last = fmt.Errorf("target %s is %s: %s", t.ScrapeURL, t.Health, t.LastError)
		}
		return false, last
	})
	return found, err
}

// WaitForValue runs the instant query until its vector satisfies cond (nil
// cond: has at least one sample) and returns that vector. A query the
// server rejects as bad_data fails at once; other errors are retried until
// ctx ends.
func (c *Client) WaitForValue(ctx context.Context, query string, cond func(model.Vector) bool, opts ...QueryOption) (model.Vector, error) {
	if cond == nil {
		cond = func(v model.Vector) bool { return len(v) > 0 }
	}
	var found model.Vector
	err := c.poll(ctx, fmt.Sprintf("a value of %q", query), func() (bool, error) {
		v, _, err := c.Vector(ctx, query, time.Time{}, opts...)
		if err != nil {
			return permanent(err), err
		}
		if cond(v) {
			found = v
			return true, nil
		}
		return false, fmt.Errorf("got %d samples that do not satisfy the condition", len(v))
	})
	return found, err
}
