package incidents_test

import (
	"errors"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/incidents"
	"github.com/promflow/promflow/internal/testutil"
	"github.com/promflow/promflow/promflowtest"
)

// withParam returns dsn with the query parameter key set to value.
func withParam(t *testing.T, dsn, key, value string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

// TestPgBouncerExecModes: behind PgBouncer in transaction pooling, pgx's
// default exec mode (named prepared statements, cached per connection)
// fails as soon as two clients prepare the same statement on one server
// connection; default_query_exec_mode=exec, cache_describe and
// simple_protocol work, for the store's queries too.
func TestPgBouncerExecModes(t *testing.T) {
	ctx := ctxT(t)
	direct := promflowtest.DatabaseURL(t)
	pool := testPool(t, direct)
	require.NoError(t, incidents.Migrate(ctx, pool))
	bouncer := testutil.PgBouncer(t, direct, testutil.PgBouncerOptions{PoolSize: 2})

	// Six clients run one query in turn on two server connections: by
	// pigeonhole two of them prepare the same statement name on one.
	run := func(t *testing.T, dsn string) error {
		p, err := pgxpool.New(ctx, withParam(t, dsn, "pool_max_conns", "6"))
		require.NoError(t, err)
		defer p.Close()
		var conns []*pgxpool.Conn
		defer func() {
			for _, c := range conns {
				c.Release()
			}
		}()
		var errs []error
		for range 6 {
			c, err := p.Acquire(ctx)
			require.NoError(t, err)
			conns = append(conns, c)
			var n int
			errs = append(errs, c.QueryRow(ctx, "SELECT count(*) FROM incidents WHERE status = $1", "open").Scan(&n))
		}
		return errors.Join(errs...)
	}
	err := run(t, bouncer)
	require.Error(t, err, "the default exec mode should break under transaction pooling")
	assert.Contains(t, err.Error(), "prepared statement")
	t.Logf("default exec mode behind PgBouncer: %v", err)

	for _, mode := range []string{"exec", "cache_describe", "simple_protocol"} {
		t.Run(mode, func(t *testing.T) {
			dsn := withParam(t, bouncer, "default_query_exec_mode", mode)
			require.NoError(t, run(t, dsn))
			p, err := pgxpool.New(ctx, dsn) // testPool's startup parameter would be refused by PgBouncer
			require.NoError(t, err)
			defer p.Close()
			s := incidents.NewStore(p, incidents.Options{})
			for range 5 {
				in, err := s.Open(ctx, incidents.NewIncident{Title: "via pgbouncer " + mode, Source: mode})
				require.NoError(t, err)
				_, err = s.Acknowledge(ctx, in.ID)
				require.NoError(t, err)
				_, err = s.Resolve(ctx, in.ID)
				require.NoError(t, err)
			}
			by, err := s.ByService(ctx)
			require.NoError(t, err)
			found := false
			for _, b := range by {
				if b.Service == mode {
					found = true
					assert.Equal(t, int64(5), b.Resolved)
				}
			}
			assert.True(t, found, "service %s in %+v", mode, by)
			st, err := s.Stats(ctx, incidents.StatsQuery{Service: mode})
			require.NoError(t, err)
			assert.Equal(t, int64(5), st.Overall.Incidents)
			// The hand-decoded statistics rows come in text in the exec and
			// simple_protocol modes: the answers equal the direct pool's.
			ref := incidents.NewStore(pool, incidents.Options{})
			for _, q := range []incidents.StatsQuery{{}, {Service: mode}, {From: time.Now().Add(-time.Hour), To: time.Now().Add(time.Hour)}} {
				got, err := s.Stats(ctx, q)
				require.NoError(t, err)
				want, err := ref.Stats(ctx, q)
				require.NoError(t, err)
				assert.Equal(t, want, got, "%+v", q)
			}
			page, err := s.Details(ctx, incidents.DetailsQuery{Service: mode, Limit: 2})
			require.NoError(t, err)
			assert.Len(t, page.Items, 2)
		})
	}
}

// TestSubscribeThroughPgBouncer: the store's pool goes through PgBouncer
// in transaction pooling and the LISTEN connection goes to PostgreSQL
// directly (ListenConnString): every change arrives, in order, with its
// row read through PgBouncer.
func TestSubscribeThroughPgBouncer(t *testing.T) {
	ctx := ctxT(t)
	direct := promflowtest.DatabaseURL(t)
	require.NoError(t, incidents.Migrate(ctx, testPool(t, direct)))
	bouncer := withParam(t, testutil.PgBouncer(t, direct, testutil.PgBouncerOptions{}), "default_query_exec_mode", "exec")
	pool, err := pgxpool.New(ctx, bouncer)
	require.NoError(t, err)
	defer pool.Close()
	s := incidents.NewStore(pool, incidents.Options{})
	sub, err := s.Subscribe(ctx, incidents.SubscribeOptions{ListenConnString: direct})
	require.NoError(t, err)
	defer sub.Close()

	var listeners int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
		WHERE application_name = 'promflow-incidents-listener' AND datname = current_database() AND query ILIKE 'LISTEN%'`).Scan(&listeners))
	assert.Equal(t, 1, listeners)

	in, err := s.Open(ctx, incidents.NewIncident{Title: "behind pgbouncer", Source: "pgb"})
	require.NoError(t, err)
	_, err = s.Acknowledge(ctx, in.ID)
	require.NoError(t, err)
	_, err = s.Resolve(ctx, in.ID)
	require.NoError(t, err)
	for _, want := range []incidents.EventKind{incidents.EventOpened, incidents.EventAcknowledged, incidents.EventResolved} {
		ev := nextEvent(t, sub)
		assert.Equal(t, want, ev.Kind)
		assert.Equal(t, in.ID, ev.ID)
		require.NotNil(t, ev.Incident, "row read through PgBouncer")
		assert.Equal(t, "behind pgbouncer", ev.Incident.Title)
	}
}

func TestSubscribeBadListenConnString(t *testing.T) {
	s, _ := newStore(t, incidents.Options{})
	_, err := s.Subscribe(ctxT(t), incidents.SubscribeOptions{ListenConnString: "postgres://u:secret@[::1"})
	require.Error(t, err)
	assert.ErrorIs(t, err, incidents.ErrInvalid)
	assert.NotContains(t, err.Error(), "secret")
}

// freezer is a TCP proxy whose connections can be frozen: bytes stop
// flowing but nothing is closed, as when a peer vanishes without a FIN.
type freezer struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  []net.Conn
	flags  []*atomic.Bool
}

func newFreezer(t *testing.T, target string) *freezer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	f := &freezer{ln: ln, target: target}
	f.wg.Add(1)
	go f.accept()
	t.Cleanup(func() {
		ln.Close()
		f.mu.Lock()
		for _, c := range f.conns {
			c.Close()
		}
		f.mu.Unlock()
		f.wg.Wait()
	})
	return f
}

func (f *freezer) accept() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", f.target)
		if err != nil {
			c.Close()
			continue
		}
		frozen := &atomic.Bool{}
		f.mu.Lock()
		f.conns = append(f.conns, c, up)
		f.flags = append(f.flags, frozen)
		f.mu.Unlock()
		f.wg.Add(2)
		go f.copy(up, c, frozen)
		go f.copy(c, up, frozen)
	}
}

func (f *freezer) copy(dst, src net.Conn, frozen *atomic.Bool) {
	defer f.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !frozen.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			dst.Close()
			return
		}
	}
}

// Freeze blackholes the connections open now (bytes are read and dropped);
// connections accepted later work.
func (f *freezer) Freeze() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, fl := range f.flags {
		fl.Store(true)
	}
}

// TestSubscribeSilentPeer: a LISTEN connection whose peer goes silent
// (no FIN, no RST) is noticed by the idle ping and replaced; the feed
// delivers EventResync and then the later changes. Pings that answer
// replace nothing.
func TestSubscribeSilentPeer(t *testing.T) {
	ctx := ctxT(t)
	s, pool := newStore(t, incidents.Options{})
	u, err := url.Parse(pool.Config().ConnString())
	require.NoError(t, err)
	proxy := newFreezer(t, u.Host)
	u.Host = proxy.ln.Addr().String()
	sub, err := s.Subscribe(ctx, incidents.SubscribeOptions{
		ListenConnString: u.String(), PingInterval: 300 * time.Millisecond, MinBackoff: 20 * time.Millisecond,
		Logger: quietLogger,
	})
	require.NoError(t, err)
	defer sub.Close()

	// Several idle intervals pass (each one pinged) before the change:
	// the next event is the change itself, no resync.
	time.Sleep(time.Second) // idle time is what this checks, not a wait for something
	in, err := s.Open(ctx, incidents.NewIncident{Title: "before", Source: "api"})
	require.NoError(t, err)
	ev := nextEvent(t, sub)
	assert.Equal(t, incidents.EventOpened, ev.Kind)
	assert.Equal(t, in.ID, ev.ID)

	proxy.Freeze()
	in2, err := s.Open(ctx, incidents.NewIncident{Title: "while frozen", Source: "api"})
	require.NoError(t, err)
	ev = nextEvent(t, sub)
	require.Equal(t, incidents.EventResync, ev.Kind, "the first event after freezing is the resync, not %+v", ev)
	// The change made while frozen is in the database for the refetch a
	// resync asks for.
	got, err := s.Get(ctx, in2.ID)
	require.NoError(t, err)
	assert.Equal(t, "while frozen", got.Title)

	in3, err := s.Open(ctx, incidents.NewIncident{Title: "after", Source: "api"})
	require.NoError(t, err)
	ev = nextEvent(t, sub)
	assert.Equal(t, incidents.EventOpened, ev.Kind)
	assert.Equal(t, in3.ID, ev.ID)
}
