package incidents_test

import (
	"context"
	"testing"
	"time"
)

func BenchmarkZZDebug(b *testing.B) {
	pool := benchPool(b)
	ctx := context.Background()
	fromDay := benchWindow.From.Unix()/86400 + 1
	toDay := benchWindow.To.Unix() / 86400
	for i := 0; i < 5; i++ {
		t := time.Now()
		rows, err := pool.Query(ctx, `SELECT source, total, ack_hist, res_hist FROM incident_rollup_day WHERE total > 0 AND day >= $1 AND day < $2`, fromDay, toDay)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for rows.Next() {
			n++
		}
		rows.Close()
		t1 := time.Since(t)
		rows, _ = pool.Query(ctx, `SELECT source, total FROM incident_rollup_day WHERE total > 0 AND day >= $1 AND day < $2`, fromDay, toDay)
		for rows.Next() {
		}
		rows.Close()
		t2 := time.Since(t)
		rows, _ = pool.Query(ctx, `SELECT source, incidents_duration_bucket(extract(epoch FROM acknowledged_at - created_at)::float8) FROM incidents WHERE created_at >= $1 AND created_at < $2`, benchWindow.From, time.Unix(fromDay*86400, 0))
		m := 0
		for rows.Next() {
			m++
		}
		rows.Close()
		t3 := time.Since(t)
		b.Log(n, m, t1, t2-t1, t3-t2)
	}
}
