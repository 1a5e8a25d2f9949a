package incidents_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/promflow/promflow/incidents"
)

// The cost the rollup triggers add to writes: an incident's lifecycle
// (open, acknowledge, resolve: three statements) through the Store, beside
// the same three statements on a copy of the table without triggers, in
// the same database. serial: one client; parallel: 8 clients at once
// (every writer of the rollup serializes on migration 0009's version row
// until it commits, and on the severity rows of the all-time rollup).
func BenchmarkWriteLifecycle(b *testing.B) {
	s, pool := newStore(b, incidents.Options{})
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `DROP TABLE IF EXISTS incidents_plain;
		CREATE TABLE incidents_plain (LIKE incidents INCLUDING DEFAULTS INCLUDING INDEXES)`); err != nil {
		b.Fatal(err)
	}
	var seq atomic.Int64
	viaStore := func() error {
		n := seq.Add(1)
		in, err := s.Open(ctx, incidents.NewIncident{Title: fmt.Sprintf("bench %d", n), Severity: "high",
			Source: fmt.Sprintf("svc-%d", n%50), Labels: map[string]string{"alertname": "Bench"}})
		if err != nil {
			return err
		}
		if _, err := s.Acknowledge(ctx, in.ID); err != nil {
			return err
		}
		_, err = s.Resolve(ctx, in.ID)
		return err
	}
	plain := func() error {
		n := seq.Add(1)
		var id string
		err := pool.QueryRow(ctx, `INSERT INTO incidents_plain (title, severity, source, status, labels)
			VALUES ($1, 'high', $2, 'open', '{"alertname": "Bench"}') RETURNING id::text`,
			fmt.Sprintf("bench %d", n), fmt.Sprintf("svc-%d", n%50)).Scan(&id)
		if err != nil {
			return err
		}
		if _, err := pool.Exec(ctx, `UPDATE incidents_plain SET status = 'acknowledged', acknowledged_at = now(), updated_at = now()
			WHERE id = $1 AND status = 'open'`, id); err != nil {
			return err
		}
		_, err = pool.Exec(ctx, `UPDATE incidents_plain SET status = 'resolved', resolved_at = now(), updated_at = now()
			WHERE id = $1 AND status IN ('open', 'acknowledged')`, id)
		return err
	}
	for _, c := range []struct {
		name string
		f    func() error
	}{{"promflow", viaStore}, {"plain_table", plain}} {
		b.Run(c.name+"/serial", func(b *testing.B) {
			warm(b, c.f)
			for b.Loop() {
				if err := c.f(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/parallel", func(b *testing.B) {
			warm(b, c.f)
			b.SetParallelism(4) // 8 clients on 2 cores; the test pool has 8 connections
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := c.f(); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
