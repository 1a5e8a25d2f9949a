-- promflow incidents schema: analytics rollups (trends, breakdowns, time to
-- detect, within-target shares, noise).
--
-- Measures per incident, by the package's rules (incidents_service,
-- incidents_resolution):
--   a   time to acknowledge  = acknowledged_at - created_at
--   r   time to resolve      = resolution - created_at
--   d   time to detect       = created_at - starts_at, alert-backed only, >= 0
--   rfs resolve from start   = resolution - starts_at, alert-backed only, >= 0
--   auto_resolved            = has a resolution time and no acknowledgement
--   reopened                 = reopen_count > 0 (reopens counted from here on)
--
-- incident_rollup_analytics holds, per grain (0 all time, 1 UTC day, 2 ISO
-- week starting Monday 00:00 UTC, 3 UTC month), dimension (0 service, 1
-- severity), period (start of the unit in days since 1970-01-01, 0 for all
-- time) and key, the counts, sums, counts within fixed targets and
-- log-bucket histograms (the layout of incidents_duration_bucket) of a, r
-- and d. A statement trigger keeps it exact for every writer, as versions 1
-- to 4 do for the other rollups.

ALTER TABLE incidents ADD COLUMN IF NOT EXISTS reopen_count integer NOT NULL DEFAULT 0;

-- Every writer's reopen (resolved or closed back to open or acknowledged)
-- counts, promflow's and another program's alike.
CREATE OR REPLACE FUNCTION incidents_count_reopen()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status IN ('resolved', 'closed') AND NEW.status IN ('open', 'acknowledged') THEN
        NEW.reopen_count := coalesce(OLD.reopen_count, 0) + 1;
    END IF;
    RETURN NEW;
END
$$;

-- Every statement below can run again on a schema that has it (Migrate
-- re-applies a migration whose record is missing).
DROP TRIGGER IF EXISTS incidents_count_reopen ON incidents;
CREATE TRIGGER incidents_count_reopen
    BEFORE UPDATE OF status ON incidents
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION incidents_count_reopen();

-- Window edges of the analytics queries: index-only scans.
CREATE INDEX IF NOT EXISTS incidents_analytics_idx ON incidents (created_at)
    INCLUDE (source, severity, status, acknowledged_at, resolved_at, starts_at, reopen_count);

-- incidents_nonneg clamps a duration at zero (clock skew between
-- Alertmanager and the database); NULL stays NULL.
CREATE OR REPLACE FUNCTION incidents_nonneg(seconds numeric)
RETURNS numeric LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN seconds < 0 THEN 0 ELSE seconds END
$$;

-- incidents_analytics_period maps a UTC day (days since 1970-01-01) to the
-- start of its unit of the grain.
CREATE OR REPLACE FUNCTION incidents_analytics_period(grain integer, day integer)
RETURNS integer LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE grain
        WHEN 0 THEN 0
        WHEN 1 THEN day
        WHEN 2 THEN day - (((day + 3) % 7) + 7) % 7
        ELSE (date_trunc('month', DATE '1970-01-01' + day)::date - DATE '1970-01-01')
    END
$$;

CREATE TABLE IF NOT EXISTS incident_rollup_analytics (
    grain         smallint NOT NULL,
    dim           smallint NOT NULL,
    period        integer  NOT NULL,
    key           text     NOT NULL,
    total         bigint   NOT NULL DEFAULT 0,
    ack_n         bigint   NOT NULL DEFAULT 0,
    ack_sum       numeric  NOT NULL DEFAULT 0,
    res_n         bigint   NOT NULL DEFAULT 0,
    res_sum       numeric  NOT NULL DEFAULT 0,
    det_n         bigint   NOT NULL DEFAULT 0,
    det_sum       numeric  NOT NULL DEFAULT 0,
    rfs_n         bigint   NOT NULL DEFAULT 0,
    rfs_sum       numeric  NOT NULL DEFAULT 0,
    auto_resolved bigint   NOT NULL DEFAULT 0,
    reopened      bigint   NOT NULL DEFAULT 0,
    ack_le_60     bigint   NOT NULL DEFAULT 0,
    ack_le_300    bigint   NOT NULL DEFAULT 0,
    ack_le_900    bigint   NOT NULL DEFAULT 0,
    ack_le_3600   bigint   NOT NULL DEFAULT 0,
    res_le_1800   bigint   NOT NULL DEFAULT 0,
    res_le_3600   bigint   NOT NULL DEFAULT 0,
    res_le_14400  bigint   NOT NULL DEFAULT 0,
    res_le_86400  bigint   NOT NULL DEFAULT 0,
    ack_hist      bytea    NOT NULL DEFAULT ''::bytea,
    res_hist      bytea    NOT NULL DEFAULT ''::bytea,
    det_hist      bytea    NOT NULL DEFAULT ''::bytea,
    PRIMARY KEY (grain, dim, period, key)
);
CREATE INDEX IF NOT EXISTS incident_rollup_analytics_key_idx
    ON incident_rollup_analytics (grain, dim, key, period);
ALTER TABLE incident_rollup_analytics ALTER COLUMN ack_hist SET STORAGE PLAIN,
    ALTER COLUMN res_hist SET STORAGE PLAIN, ALTER COLUMN det_hist SET STORAGE PLAIN;

-- incidents_analytics_apply adds signed contributions (w = +1 for a row
-- version that appeared, -1 for one that went away) to every grain and
-- dimension, in one statement with its rows in (grain, dim, period, key)
-- order, so concurrent single-statement writers lock them in one order.
CREATE OR REPLACE FUNCTION incidents_analytics_apply(
    p_source text[], p_severity text[], p_day integer[], p_a numeric[], p_r numeric[],
    p_d numeric[], p_rfs numeric[], p_reopen integer[], p_w integer[])
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF p_source IS NULL THEN
        RETURN;
    END IF;
    INSERT INTO incident_rollup_analytics AS t (grain, dim, period, key, total, ack_n, ack_sum,
        res_n, res_sum, det_n, det_sum, rfs_n, rfs_sum, auto_resolved, reopened,
        ack_le_60, ack_le_300, ack_le_900, ack_le_3600,
        res_le_1800, res_le_3600, res_le_14400, res_le_86400, ack_hist, res_hist, det_hist)
    WITH u AS (
        SELECT * FROM unnest(p_source, p_severity, p_day, p_a, p_r, p_d, p_rfs, p_reopen, p_w)
            AS u(source, severity, day, a, r, d, rfs, reopen, w)
    ), x AS (
        SELECT g.grain, k.dim, incidents_analytics_period(g.grain, u.day) AS period, k.key,
               u.a, u.r, u.d, u.rfs, u.reopen, u.w
        FROM u CROSS JOIN (VALUES (0), (1), (2), (3)) AS g(grain)
        CROSS JOIN LATERAL (VALUES (0, u.source), (1, u.severity)) AS k(dim, key)
    ), c AS (
        SELECT grain, dim, period, key, sum(w) AS total,
               coalesce(sum(w) FILTER (WHERE a IS NOT NULL), 0) AS ack_n, coalesce(sum(w * a), 0) AS ack_sum,
               coalesce(sum(w) FILTER (WHERE r IS NOT NULL), 0) AS res_n, coalesce(sum(w * r), 0) AS res_sum,
               coalesce(sum(w) FILTER (WHERE d IS NOT NULL), 0) AS det_n, coalesce(sum(w * d), 0) AS det_sum,
               coalesce(sum(w) FILTER (WHERE rfs IS NOT NULL), 0) AS rfs_n, coalesce(sum(w * rfs), 0) AS rfs_sum,
               coalesce(sum(w) FILTER (WHERE r IS NOT NULL AND a IS NULL), 0) AS auto_resolved,
               coalesce(sum(w) FILTER (WHERE reopen > 0), 0) AS reopened,
               coalesce(sum(w) FILTER (WHERE a <= 60), 0) AS ack_le_60,
               coalesce(sum(w) FILTER (WHERE a <= 300), 0) AS ack_le_300,
               coalesce(sum(w) FILTER (WHERE a <= 900), 0) AS ack_le_900,
               coalesce(sum(w) FILTER (WHERE a <= 3600), 0) AS ack_le_3600,
               coalesce(sum(w) FILTER (WHERE r <= 1800), 0) AS res_le_1800,
               coalesce(sum(w) FILTER (WHERE r <= 3600), 0) AS res_le_3600,
               coalesce(sum(w) FILTER (WHERE r <= 14400), 0) AS res_le_14400,
               coalesce(sum(w) FILTER (WHERE r <= 86400), 0) AS res_le_86400
        FROM x GROUP BY grain, dim, period, key
    ), h AS (
        SELECT grain, dim, period, key,
               incidents_hist_build(array_agg(b) FILTER (WHERE kind = 0), array_agg(n) FILTER (WHERE kind = 0)) AS ha,
               incidents_hist_build(array_agg(b) FILTER (WHERE kind = 1), array_agg(n) FILTER (WHERE kind = 1)) AS hr,
               incidents_hist_build(array_agg(b) FILTER (WHERE kind = 2), array_agg(n) FILTER (WHERE kind = 2)) AS hd
        FROM (SELECT grain, dim, period, key, v.kind, v.b, sum(w)::integer AS n
              FROM x CROSS JOIN LATERAL (VALUES (0, incidents_duration_bucket(x.a::float8)),
                                                (1, incidents_duration_bucket(x.r::float8)),
                                                (2, incidents_duration_bucket(x.d::float8))) AS v(kind, b)
              WHERE v.b > 0
              GROUP BY 1, 2, 3, 4, 5, 6 HAVING sum(w) <> 0) s
        GROUP BY grain, dim, period, key
    )
    SELECT c.grain, c.dim, c.period, c.key, c.total, c.ack_n, c.ack_sum, c.res_n, c.res_sum,
           c.det_n, c.det_sum, c.rfs_n, c.rfs_sum, c.auto_resolved, c.reopened,
           c.ack_le_60, c.ack_le_300, c.ack_le_900, c.ack_le_3600,
           c.res_le_1800, c.res_le_3600, c.res_le_14400, c.res_le_86400,
           coalesce(h.ha, ''::bytea), coalesce(h.hr, ''::bytea), coalesce(h.hd, ''::bytea)
    FROM c LEFT JOIN h USING (grain, dim, period, key)
    WHERE h.grain IS NOT NULL OR c.total <> 0 OR c.ack_n <> 0 OR c.ack_sum <> 0 OR c.res_n <> 0
       OR c.res_sum <> 0 OR c.det_n <> 0 OR c.det_sum <> 0 OR c.rfs_n <> 0 OR c.rfs_sum <> 0
       OR c.auto_resolved <> 0 OR c.reopened <> 0 OR c.ack_le_60 <> 0 OR c.ack_le_300 <> 0
       OR c.ack_le_900 <> 0 OR c.ack_le_3600 <> 0 OR c.res_le_1800 <> 0 OR c.res_le_3600 <> 0
       OR c.res_le_14400 <> 0 OR c.res_le_86400 <> 0
    ORDER BY c.grain, c.dim, c.period, c.key
    ON CONFLICT (grain, dim, period, key) DO UPDATE SET
        total = t.total + excluded.total,
        ack_n = t.ack_n + excluded.ack_n, ack_sum = t.ack_sum + excluded.ack_sum,
        res_n = t.res_n + excluded.res_n, res_sum = t.res_sum + excluded.res_sum,
        det_n = t.det_n + excluded.det_n, det_sum = t.det_sum + excluded.det_sum,
        rfs_n = t.rfs_n + excluded.rfs_n, rfs_sum = t.rfs_sum + excluded.rfs_sum,
        auto_resolved = t.auto_resolved + excluded.auto_resolved, reopened = t.reopened + excluded.reopened,
        ack_le_60 = t.ack_le_60 + excluded.ack_le_60, ack_le_300 = t.ack_le_300 + excluded.ack_le_300,
        ack_le_900 = t.ack_le_900 + excluded.ack_le_900, ack_le_3600 = t.ack_le_3600 + excluded.ack_le_3600,
        res_le_1800 = t.res_le_1800 + excluded.res_le_1800, res_le_3600 = t.res_le_3600 + excluded.res_le_3600,
        res_le_14400 = t.res_le_14400 + excluded.res_le_14400, res_le_86400 = t.res_le_86400 + excluded.res_le_86400,
        ack_hist = incidents_hist_merge(t.ack_hist, excluded.ack_hist),
        res_hist = incidents_hist_merge(t.res_hist, excluded.res_hist),
        det_hist = incidents_hist_merge(t.det_hist, excluded.det_hist);
END
$$;

-- The per-row measures, shared by the trigger and the rebuild.
CREATE OR REPLACE FUNCTION incidents_analytics_stmt()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM incidents_analytics_apply(array_agg(source), array_agg(severity), array_agg(day), array_agg(a),
            array_agg(r), array_agg(d), array_agg(rfs), array_agg(reopen), array_agg(w))
        FROM (SELECT incidents_service(source) AS source, severity,
                     floor(extract(epoch FROM created_at) / 86400)::integer AS day,
                     extract(epoch FROM acknowledged_at - created_at) AS a,
                     extract(epoch FROM incidents_resolution(status, resolved_at) - created_at) AS r,
                     incidents_nonneg(extract(epoch FROM created_at - starts_at)) AS d,
                     incidents_nonneg(extract(epoch FROM incidents_resolution(status, resolved_at) - starts_at)) AS rfs,
                     reopen_count AS reopen, 1 AS w
              FROM incidents_new) z;
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM incidents_analytics_apply(array_agg(source), array_agg(severity), array_agg(day), array_agg(a),
            array_agg(r), array_agg(d), array_agg(rfs), array_agg(reopen), array_agg(w))
        FROM (SELECT incidents_service(source) AS source, severity,
                     floor(extract(epoch FROM created_at) / 86400)::integer AS day,
                     extract(epoch FROM acknowledged_at - created_at) AS a,
                     extract(epoch FROM incidents_resolution(status, resolved_at) - created_at) AS r,
                     incidents_nonneg(extract(epoch FROM created_at - starts_at)) AS d,
                     incidents_nonneg(extract(epoch FROM incidents_resolution(status, resolved_at) - starts_at)) AS rfs,
                     reopen_count AS reopen, -1 AS w
              FROM incidents_old) z;
    ELSE
        PERFORM incidents_analytics_apply(array_agg(source), array_agg(severity), array_agg(day), array_agg(a),
            array_agg(r), array_agg(d), array_agg(rfs), array_agg(reopen), array_agg(w))
        FROM (SELECT incidents_service(source) AS source, severity,
                     floor(extract(epoch FROM created_at) / 86400)::integer AS day,
                     extract(epoch FROM acknowledged_at - created_at) AS a,
                     extract(epoch FROM incidents_resolution(status, resolved_at) - created_at) AS r,
                     incidents_nonneg(extract(epoch FROM created_at - starts_at)) AS d,
                     incidents_nonneg(extract(epoch FROM incidents_resolution(status, resolved_at) - starts_at)) AS rfs,
                     reopen_count AS reopen, 1 AS w
              FROM incidents_new
              UNION ALL
              SELECT incidents_service(source), severity,
                     floor(extract(epoch FROM created_at) / 86400)::integer,
                     extract(epoch FROM acknowledged_at - created_at),
                     extract(epoch FROM incidents_resolution(status, resolved_at) - created_at),
                     incidents_nonneg(extract(epoch FROM created_at - starts_at)),
                     incidents_nonneg(extract(epoch FROM incidents_resolution(status, resolved_at) - starts_at)),
                     reopen_count, -1
              FROM incidents_old) z;
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS incidents_rollup_x_analytics_ins ON incidents;
DROP TRIGGER IF EXISTS incidents_rollup_x_analytics_upd ON incidents;
DROP TRIGGER IF EXISTS incidents_rollup_x_analytics_del ON incidents;
DROP TRIGGER IF EXISTS incidents_rollup_x_analytics_truncate ON incidents;
CREATE TRIGGER incidents_rollup_x_analytics_ins
    AFTER INSERT ON incidents REFERENCING NEW TABLE AS incidents_new
    FOR EACH STATEMENT EXECUTE FUNCTION incidents_analytics_stmt();
CREATE TRIGGER incidents_rollup_x_analytics_upd
    AFTER UPDATE ON incidents REFERENCING OLD TABLE AS incidents_old NEW TABLE AS incidents_new
    FOR EACH STATEMENT EXECUTE FUNCTION incidents_analytics_stmt();
CREATE TRIGGER incidents_rollup_x_analytics_del
    AFTER DELETE ON incidents REFERENCING OLD TABLE AS incidents_old
    FOR EACH STATEMENT EXECUTE FUNCTION incidents_analytics_stmt();

CREATE OR REPLACE FUNCTION incidents_analytics_truncate()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM incident_rollup_analytics;
    RETURN NULL;
END
$$;
CREATE TRIGGER incidents_rollup_x_analytics_truncate
    AFTER TRUNCATE ON incidents
    FOR EACH STATEMENT EXECUTE FUNCTION incidents_analytics_truncate();

-- incidents_rebuild_analytics recomputes incident_rollup_analytics from the
-- base table: per (dimension, key, day) first, then every grain from those.
CREATE OR REPLACE FUNCTION incidents_rebuild_analytics()
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE incidents IN SHARE MODE;
    LOCK TABLE incident_rollup_analytics IN EXCLUSIVE MODE;
    DELETE FROM incident_rollup_analytics;

    DROP TABLE IF EXISTS pg_temp.incidents_analytics_src;
    CREATE TEMP TABLE incidents_analytics_src ON COMMIT DROP AS
    SELECT k.dim, k.key, z.day, z.a, z.r, z.d, z.rfs, z.reopen
    FROM (SELECT incidents_service(source) AS source, severity,
                 floor(extract(epoch FROM created_at) / 86400)::integer AS day,
                 extract(epoch FROM acknowledged_at - created_at) AS a,
                 extract(epoch FROM incidents_resolution(status, resolved_at) - created_at) AS r,
                 incidents_nonneg(extract(epoch FROM created_at - starts_at)) AS d,
                 incidents_nonneg(extract(epoch FROM incidents_resolution(status, resolved_at) - starts_at)) AS rfs,
                 reopen_count AS reopen
          FROM incidents) z
    CROSS JOIN LATERAL (VALUES (0::smallint, z.source), (1::smallint, z.severity)) AS k(dim, key);

    DROP TABLE IF EXISTS pg_temp.incidents_analytics_c;
    CREATE TEMP TABLE incidents_analytics_c ON COMMIT DROP AS
    SELECT dim, key, day, count(*) AS total,
           count(a) AS ack_n, coalesce(sum(a), 0) AS ack_sum,
           count(r) AS res_n, coalesce(sum(r), 0) AS res_sum,
           count(d) AS det_n, coalesce(sum(d), 0) AS det_sum,
           count(rfs) AS rfs_n, coalesce(sum(rfs), 0) AS rfs_sum,
           count(*) FILTER (WHERE r IS NOT NULL AND a IS NULL) AS auto_resolved,
           count(*) FILTER (WHERE reopen > 0) AS reopened,
           count(*) FILTER (WHERE a <= 60) AS ack_le_60, count(*) FILTER (WHERE a <= 300) AS ack_le_300,
           count(*) FILTER (WHERE a <= 900) AS ack_le_900, count(*) FILTER (WHERE a <= 3600) AS ack_le_3600,
           count(*) FILTER (WHERE r <= 1800) AS res_le_1800, count(*) FILTER (WHERE r <= 3600) AS res_le_3600,
           count(*) FILTER (WHERE r <= 14400) AS res_le_14400, count(*) FILTER (WHERE r <= 86400) AS res_le_86400
    FROM incidents_analytics_src GROUP BY dim, key, day;

    DROP TABLE IF EXISTS pg_temp.incidents_analytics_h;
    CREATE TEMP TABLE incidents_analytics_h ON COMMIT DROP AS
    SELECT dim, key, day, v.kind, v.b, count(*) AS n
    FROM incidents_analytics_src
    CROSS JOIN LATERAL (VALUES (0, incidents_duration_bucket(a::float8)), (1, incidents_duration_bucket(r::float8)),
                               (2, incidents_duration_bucket(d::float8))) AS v(kind, b)
    WHERE v.b > 0
    GROUP BY 1, 2, 3, 4, 5;
    DROP TABLE pg_temp.incidents_analytics_src;

    INSERT INTO incident_rollup_analytics (grain, dim, period, key, total, ack_n, ack_sum,
        res_n, res_sum, det_n, det_sum, rfs_n, rfs_sum, auto_resolved, reopened,
        ack_le_60, ack_le_300, ack_le_900, ack_le_3600,
        res_le_1800, res_le_3600, res_le_14400, res_le_86400, ack_hist, res_hist, det_hist)
    WITH c AS (
        SELECT g.grain, dim, incidents_analytics_period(g.grain, day) AS period, key,
               sum(total) AS total, sum(ack_n) AS ack_n, sum(ack_sum) AS ack_sum, sum(res_n) AS res_n,
               sum(res_sum) AS res_sum, sum(det_n) AS det_n, sum(det_sum) AS det_sum, sum(rfs_n) AS rfs_n,
               sum(rfs_sum) AS rfs_sum, sum(auto_resolved) AS auto_resolved, sum(reopened) AS reopened,
               sum(ack_le_60) AS ack_le_60, sum(ack_le_300) AS ack_le_300, sum(ack_le_900) AS ack_le_900,
               sum(ack_le_3600) AS ack_le_3600, sum(res_le_1800) AS res_le_1800, sum(res_le_3600) AS res_le_3600,
               sum(res_le_14400) AS res_le_14400, sum(res_le_86400) AS res_le_86400
        FROM incidents_analytics_c CROSS JOIN (VALUES (0), (1), (2), (3)) AS g(grain)
        GROUP BY 1, 2, 3, 4
    ), s AS (
        SELECT g.grain, dim, incidents_analytics_period(g.grain, day) AS period, key, kind, b, sum(n)::integer AS n
        FROM incidents_analytics_h CROSS JOIN (VALUES (0), (1), (2), (3)) AS g(grain)
        GROUP BY 1, 2, 3, 4, 5, 6
    ), span AS (
        SELECT grain, dim, period, key, kind, min(b) AS lo, max(b) AS hi FROM s GROUP BY 1, 2, 3, 4, 5
    ), enc AS (
        -- Set-based encoding (see incidents_hist_get): the first slot, then
        -- one counter per slot of the span, zeros included.
        SELECT sp.grain, sp.dim, sp.period, sp.key, sp.kind,
               int2send(sp.lo::smallint) || string_agg(int4send(coalesce(s.n, 0)), ''::bytea ORDER BY d.b) AS h
        FROM span sp CROSS JOIN LATERAL generate_series(sp.lo, sp.hi) AS d(b)
        LEFT JOIN s ON (s.grain, s.dim, s.period, s.key, s.kind, s.b) = (sp.grain, sp.dim, sp.period, sp.key, sp.kind, d.b)
        GROUP BY 1, 2, 3, 4, 5, sp.lo
    ), h AS (
        SELECT grain, dim, period, key, (array_agg(h) FILTER (WHERE kind = 0))[1] AS ha,
               (array_agg(h) FILTER (WHERE kind = 1))[1] AS hr, (array_agg(h) FILTER (WHERE kind = 2))[1] AS hd
        FROM enc GROUP BY 1, 2, 3, 4
    )
    SELECT c.grain, c.dim, c.period, c.key, c.total, c.ack_n, c.ack_sum, c.res_n, c.res_sum,
           c.det_n, c.det_sum, c.rfs_n, c.rfs_sum, c.auto_resolved, c.reopened,
           c.ack_le_60, c.ack_le_300, c.ack_le_900, c.ack_le_3600,
           c.res_le_1800, c.res_le_3600, c.res_le_14400, c.res_le_86400,
           coalesce(h.ha, ''::bytea), coalesce(h.hr, ''::bytea), coalesce(h.hd, ''::bytea)
    FROM c LEFT JOIN h USING (grain, dim, period, key)
    ORDER BY c.grain, c.dim, c.period, c.key; -- a window's rows end up on few pages
    DROP TABLE pg_temp.incidents_analytics_c;
    DROP TABLE pg_temp.incidents_analytics_h;
END
$$;

-- Store.RebuildRollups calls incidents_rebuild_rollups(): keep the earlier
-- rebuild under another name and make the public one rebuild both.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'incidents_rebuild_rollups_base'
                   AND pronamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())) THEN
        ALTER FUNCTION incidents_rebuild_rollups() RENAME TO incidents_rebuild_rollups_base;
    END IF;
END
$$;
CREATE OR REPLACE FUNCTION incidents_rebuild_rollups()
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM incidents_rebuild_rollups_base();
    PERFORM incidents_rebuild_analytics();
END
$$;

SELECT incidents_rebuild_analytics();
