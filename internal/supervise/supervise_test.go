package supervise

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/internal/testutil"
)

type fakeChild struct {
	id   int
	done chan struct{}
	once sync.Once
}

func (f *fakeChild) Done() <-chan struct{} { return f.done }
func (f *fakeChild) Stop() error           { f.exit(); return nil }
func (f *fakeChild) exit()                 { f.once.Do(func() { close(f.done) }) }

func fast() Options {
	return Options{Name: "fake", MinBackoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond, ResetAfter: time.Hour}
}

// TestRestartsAChildThatExits: each exit brings a new child; Stop stops
// the current one and no restart follows.
func TestRestartsAChildThatExits(t *testing.T) {
	var n atomic.Int32
	start := func(context.Context) (*fakeChild, error) {
		return &fakeChild{id: int(n.Add(1)), done: make(chan struct{})}, nil
	}
	s, err := Start(context.Background(), start, fast())
	require.NoError(t, err)
	for want := 2; want <= 4; want++ {
		c, up := s.Current()
		require.True(t, up)
		c.exit()
		testutil.Eventually(t, 5*time.Second, func() error {
			if c, up := s.Current(); !up || c.id != want {
				return errors.New("not restarted yet")
			}
			return nil
		})
	}
	assert.Equal(t, 3, s.Restarts())
	last, _ := s.Current()
	require.NoError(t, s.Stop())
	select {
	case <-last.Done():
	default:
		t.Fatal("Stop did not stop the running child")
	}
	_, up := s.Current()
	assert.False(t, up)
	assert.Equal(t, int32(4), n.Load(), "no start after Stop")
}

// TestGivesUpAfterFailures: starts that keep failing end supervision with
// ErrGaveUp, once; a permanent error gives up at the first attempt.
func TestGivesUpAfterFailures(t *testing.T) {
	for _, permanent := range []bool{false, true} {
		boom := errors.New("boom")
		var calls atomic.Int32
		first := &fakeChild{done: make(chan struct{})}
		start := func(context.Context) (*fakeChild, error) {
			if calls.Add(1) == 1 {
				return first, nil
			}
			return nil, boom
		}
		gaveUp := make(chan error, 2)
		opts := fast()
		opts.MaxFailures = 3
		opts.OnGiveUp = func(err error) { gaveUp <- err }
		if permanent {
			opts.Permanent = func(err error) bool { return errors.Is(err, boom) }
		}
		s, err := Start(context.Background(), start, opts)
		require.NoError(t, err)
		first.exit()
		select {
		case err := <-gaveUp:
			assert.ErrorIs(t, err, ErrGaveUp)
			assert.ErrorIs(t, err, boom)
		case <-time.After(5 * time.Second):
			t.Fatal("no give-up")
		}
		want := int32(4) // the first start and 3 failures
		if permanent {
			want = 2
		}
		assert.Equal(t, want, calls.Load())
		_, up := s.Current()
		assert.False(t, up)
		require.NoError(t, s.Stop())
		assert.Empty(t, gaveUp)
	}
}

// TestFirstStartErrorIsReturned: nothing is supervised when the first
// start fails.
func TestFirstStartErrorIsReturned(t *testing.T) {
	boom := errors.New("boom")
	s, err := Start(context.Background(), func(context.Context) (*fakeChild, error) { return nil, boom }, Options{})
	assert.ErrorIs(t, err, boom)
	assert.Nil(t, s)
}

// TestBackoffDoublesAndResets: the waits between failed starts double up
// to the maximum; a child that stayed up ResetAfter restarts after the
// minimum again.
func TestBackoffDoublesAndResets(t *testing.T) {
	var mu sync.Mutex
	var starts []time.Time
	var fail atomic.Bool
	var cur atomic.Pointer[fakeChild]
	start := func(context.Context) (*fakeChild, error) {
		mu.Lock()
		starts = append(starts, time.Now())
		mu.Unlock()
		if fail.Load() {
			return nil, errors.New("not yet")
		}
		c := &fakeChild{done: make(chan struct{})}
		cur.Store(c)
		return c, nil
	}
	opts := Options{Name: "fake", MinBackoff: 20 * time.Millisecond, MaxBackoff: 400 * time.Millisecond, ResetAfter: 300 * time.Millisecond, MaxFailures: 100}
	s, err := Start(context.Background(), start, opts)
	require.NoError(t, err)
	defer s.Stop()
	fail.Store(true)
	cur.Load().exit()
	testutil.Eventually(t, 5*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(starts) < 6 {
			return errors.New("waiting for failed starts")
		}
		return nil
	})
	fail.Store(false)
	testutil.Eventually(t, 5*time.Second, func() error {
		if _, up := s.Current(); !up {
			return errors.New("down")
		}
		return nil
	})
	mu.Lock()
	gaps := make([]time.Duration, 0, len(starts))
	for i := 2; i < len(starts); i++ {
		gaps = append(gaps, starts[i].Sub(starts[i-1]))
	}
	mu.Unlock()
	// Waits 40, 80, 160, 320, 400, ... after the first failure.
	want := 40 * time.Millisecond
	for _, g := range gaps {
		assert.GreaterOrEqual(t, g, want)
		want = min(2*want, opts.MaxBackoff)
	}
	// Up longer than ResetAfter: the next restart waits the minimum.
	time.Sleep(opts.ResetAfter) // the condition under test is elapsed time itself
	before := time.Now()
	old := cur.Load()
	old.exit()
	testutil.Eventually(t, 5*time.Second, func() error {
		if c, up := s.Current(); !up || c == old {
			return errors.New("not restarted yet")
		}
		return nil
	})
	mu.Lock()
	restartedAt := starts[len(starts)-1]
	mu.Unlock()
	assert.Less(t, restartedAt.Sub(before), 300*time.Millisecond, "backoff reset to the minimum after a long uptime")
}
