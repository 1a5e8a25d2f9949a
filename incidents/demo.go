package incidents

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// demoIncident is one incident of the demo data set; times are offsets from
// the moment of loading (created) and from creation (ack, res; 0 = none).
type demoIncident struct {
	id, title, severity, source, status, desc string
	created, ack, res                         time.Duration
}

// demoIncidents is the seed report's data set: 5 services, 9 incidents
// (prometheus 4 open + 1 resolved, multi-test-server 1 open, db-monitor 1
// resolved, node-exporter 1 acknowledged, rebuilt-test 1 resolved).
var demoIncidents = []demoIncident{
	{"5eed0000-0000-4000-8000-000000000001", "Prometheus target down: mock-metrics", "critical", "prometheus", "open",
		"The scrape of job mock-metrics has failed for 2 minutes.", 12 * time.Minute, 0, 0},
	{"5eed0000-0000-4000-8000-000000000002", "High memory usage (78%)", "warning", "prometheus", "open",
		"mock_high_memory_usage_bytes is above 75% of the limit.", 35 * time.Minute, 0, 0},
	{"5eed0000-0000-4000-8000-000000000003", "High CPU usage (78%)", "warning", "prometheus", "open",
		"mock_high_cpu_usage_percent has been above 75 for 5 minutes.", 50 * time.Minute, 0, 0},
	{"5eed0000-0000-4000-8000-000000000004", "Disk usage above 80% on sda (85%)", "warning", "prometheus", "open",
		"mock_disk_usage_percent{device=\"sda\"} is 85.", 2 * time.Hour, 0, 0},
	{"5eed0000-0000-4000-8000-000000000005", "Prometheus rule evaluation slow", "info", "prometheus", "resolved",
		"Rule group evaluation took longer than its interval.", 26 * time.Hour, 4*time.Minute + 30*time.Second, 47 * time.Minute},
	{"5eed0000-0000-4000-8000-000000000006", "Multi test server unreachable", "critical", "multi-test-server", "open",
		"Health check of multi-test-server times out.", 3 * time.Hour, 0, 0},
	{"5eed0000-0000-4000-8000-000000000007", "PostgreSQL connections near the limit", "critical", "db-monitor", "resolved",
		"92 of 100 connections in use.", 50 * time.Hour, 6 * time.Minute, 92 * time.Minute},
	{"5eed0000-0000-4000-8000-000000000008", "Node load average high", "warning", "node-exporter", "acknowledged",
		"node_load5 is above the number of cores.", 90 * time.Minute, 9 * time.Minute, 0},
	{"5eed0000-0000-4000-8000-000000000009", "Rebuilt test service failing its health check", "critical", "rebuilt-test", "resolved",
		"The service restarted in a loop after its image was rebuilt.", 5 * 24 * time.Hour, 2 * time.Minute, 18 * time.Minute},
}

// DemoIncidents is the number of incidents [LoadDemo] loads.
const DemoIncidents = 9

// LoadDemo loads the seed report's data set: 5 services and 9 incidents
// (prometheus 5: 4 open and 1 resolved; multi-test-server 1 open; db-monitor
// 1 resolved; node-exporter 1 acknowledged; rebuilt-test 1 resolved), created
// between minutes and days before now and acknowledged and resolved minutes
// after creation, so MTTA and MTTR are non-trivial. The incidents have fixed
// ids, so loading again adds none that are still there (a demo incident
// that was deleted comes back; one that was changed stays as it is). It
// returns how many it inserted. Call [Migrate] first. One statement, so it
// is safe to call from several processes at once.
func LoadDemo(ctx context.Context, pool *pgxpool.Pool) (int, error) {
	now := time.Now().UTC()
	n := len(demoIncidents)
	var (
		ids, titles, sevs, srcs, stats, descs = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		created                               = make([]time.Time, n)
		acked, resolved                       = make([]*time.Time, n), make([]*time.Time, n)
	)
	for i, d := range demoIncidents {
		ids[i], titles[i], sevs[i], srcs[i], stats[i], descs[i] = d.id, d.title, d.severity, d.source, d.status, d.desc
		created[i] = now.Add(-d.created)
		if d.ack > 0 {
			t := created[i].Add(d.ack)
			acked[i] = &t
		}
		if d.res > 0 {
			t := created[i].Add(d.res)
			resolved[i] = &t
		}
	}
	tag, err := pool.Exec(ctx, `INSERT INTO incidents
		(id, title, severity, source, status, description, labels, created_at, updated_at, acknowledged_at, resolved_at)
		SELECT id, title, severity, source, status, description,
		       jsonb_build_object('demo', 'true', 'service', source), created_at,
		       greatest(created_at, acknowledged_at, resolved_at), acknowledged_at, resolved_at
		FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
		            $7::timestamptz[], $8::timestamptz[], $9::timestamptz[])
		     AS d(id, title, severity, source, status, description, created_at, acknowledged_at, resolved_at)
		ORDER BY id
		ON CONFLICT (id) DO NOTHING`,
		ids, titles, sevs, srcs, stats, descs, created, acked, resolved)
	if err != nil {
		return 0, fmt.Errorf("incidents: load demo: %w", classify(err))
	}
	return int(tag.RowsAffected()), nil
}
