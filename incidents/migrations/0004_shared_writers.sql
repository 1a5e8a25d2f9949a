-- promflow incidents schema, version 4: one table, several writers.
--
-- The original platform's incident-management keeps writing the incidents
-- table next to promflow: it supplies ids, may leave source empty, and its
-- PATCH can set a resolved incident back to open (or acknowledged) without
-- clearing resolved_at. This version makes every database, adopted or
-- created by promflow, accept those writes, and fixes how such rows count:
--
--   * service: a row's service is its source, or 'unknown' when source is
--     NULL (incidents_service). The row keeps its NULL.
--   * resolution: a row's resolution time is resolved_at when its status is
--     resolved or closed, and none otherwise (incidents_resolution): an open
--     or acknowledged row is not resolved, whatever resolved_at still holds,
--     so it counts as still open and stays out of MTTR, as promflow's own
--     reopen (which clears resolved_at) does.
--   * acknowledgement: acknowledged_at whenever it is set, as before; a row
--     whose status is acknowledged without a time counts in ack_count but
--     has no time to acknowledge.
--
-- The rollup triggers, the rebuild and the change feed use these two
-- functions, and so do the package's queries, so the rollups equal a plain
-- GROUP BY over them.

-- The original's writers supply ids; promflow's do not. Keep a default that
-- is there (promflow's, or another writer's).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_attrdef d
                   JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
                   WHERE d.adrelid = 'incidents'::regclass AND a.attname = 'id') THEN
        ALTER TABLE incidents ALTER COLUMN id SET DEFAULT gen_random_uuid();
    END IF;
END
$$;

-- The original's writers set ack_token and resolve_token; a table promflow
-- created gets them too (nullable and unique, as in the original schema),
-- so those writers work on it. A table that has them keeps them as they are.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'incidents'::regclass
                   AND attname = 'ack_token' AND NOT attisdropped) THEN
        ALTER TABLE incidents ADD COLUMN ack_token varchar(64) UNIQUE;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'incidents'::regclass
                   AND attname = 'resolve_token' AND NOT attisdropped) THEN
        ALTER TABLE incidents ADD COLUMN resolve_token varchar(64) UNIQUE;
    END IF;
END
$$;

-- Nullable as in the original schema (no row changes).
ALTER TABLE incidents ALTER COLUMN source DROP NOT NULL, ALTER COLUMN labels DROP NOT NULL;

-- Status and timestamps may disagree as the original writes them; the rules
-- above decide how such a row counts.
ALTER TABLE incidents
    DROP CONSTRAINT IF EXISTS incidents_acknowledged_has_time,
    DROP CONSTRAINT IF EXISTS incidents_open_not_resolved,
    DROP CONSTRAINT IF EXISTS incidents_resolved_has_time;

CREATE OR REPLACE FUNCTION incidents_service(source text)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(source, 'unknown')
$$;

CREATE OR REPLACE FUNCTION incidents_resolution(status text, resolved_at timestamptz)
RETURNS timestamptz LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN status IN ('resolved', 'closed') THEN resolved_at END
$$;

-- Versions 1 and 3's functions again, with the two rules.
CREATE OR REPLACE FUNCTION incidents_rollup_stmt()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM incidents_rollup_apply(array_agg(source), array_agg(day), array_agg(status),
                                       array_agg(a), array_agg(r), array_agg(w))
        FROM (SELECT incidents_service(source) AS source, floor(extract(epoch FROM created_at) / 86400)::integer AS day, status,
                     extract(epoch FROM acknowledged_at - created_at) AS a,
                     extract(epoch FROM incidents_resolution(status, resolved_at) - created_at) AS r, 1 AS w
              FROM incidents_new) d;
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM incidents_rollup_apply(array_agg(source), array_agg(day), array_agg(status),
                                       array_agg(a), array_agg(r), array_agg(w))
        FROM (SELECT incidents_service(source) AS source, floor(extract(epoch FROM created_at) / 86400)::integer AS day, status,
                     extract(epoch FROM acknowledged_at - created_at) AS a,
                     extract(epoch FROM incidents_resolution(status, resolved_at) - created_at) AS r, -1 AS w
              FROM incidents_old) d;
    ELSE
        PERFORM incidents_rollup_apply(array_agg(source), array_agg(day), array_agg(status),
                                       array_agg(a), array_agg(r), array_agg(w))
        FROM (SELECT incidents_service(source) AS source, floor(extract(epoch FROM created_at) / 86400)::integer AS day, status,
                     extract(epoch FROM acknowledged_at - created_at) AS a,
                     extract(epoch FROM incidents_resolution(status, resolved_at) - created_at) AS r, 1 AS w
              FROM incidents_new
              UNION ALL
              SELECT incidents_service(source), floor(extract(epoch FROM created_at) / 86400)::integer, status,
                     extract(epoch FROM acknowledged_at - created_at),
                     extract(epoch FROM incidents_resolution(status, resolved_at) - created_at), -1
              FROM incidents_old) d;
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION incidents_rebuild_rollups()
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE incidents IN SHARE MODE;
    LOCK TABLE incident_rollup_service, incident_rollup_day IN EXCLUSIVE MODE;
    DELETE FROM incident_rollup_day;
    DELETE FROM incident_rollup_service;

    DROP TABLE IF EXISTS pg_temp.incidents_rebuild_src;
    CREATE TEMP TABLE incidents_rebuild_src ON COMMIT DROP AS
    SELECT incidents_service(source) AS source,
           floor(extract(epoch FROM created_at) / 86400)::integer AS day,
           status,
           extract(epoch FROM acknowledged_at - created_at) AS a,
           extract(epoch FROM incidents_resolution(status, resolved_at) - created_at) AS r
    FROM incidents;

    INSERT INTO incident_rollup_day (source, day, total, open_n, ack_status, resolved_n,
        closed_n, ack_n, ack_sum, res_n, res_sum, ack_hist, res_hist)
    WITH c AS (
        SELECT source, day, count(*) AS total,
               count(*) FILTER (WHERE status = 'open') AS open_n,
               count(*) FILTER (WHERE status = 'acknowledged') AS ack_status,
               count(*) FILTER (WHERE status = 'resolved') AS resolved_n,
               count(*) FILTER (WHERE status = 'closed') AS closed_n,
               count(a) AS ack_n, coalesce(sum(a), 0) AS ack_sum,
               count(r) AS res_n, coalesce(sum(r), 0) AS res_sum
        FROM incidents_rebuild_src GROUP BY source, day
    ), ha AS (
        SELECT source, day, array_agg(b) AS bs, array_agg(n) AS ns FROM (
            SELECT source, day, incidents_duration_bucket(a::double precision) AS b, count(*)::integer AS n
            FROM incidents_rebuild_src WHERE a IS NOT NULL GROUP BY 1, 2, 3) x
        GROUP BY source, day
    ), hr AS (
        SELECT source, day, array_agg(b) AS bs, array_agg(n) AS ns FROM (
            SELECT source, day, incidents_duration_bucket(r::double precision) AS b, count(*)::integer AS n
            FROM incidents_rebuild_src WHERE r IS NOT NULL GROUP BY 1, 2, 3) x
        GROUP BY source, day
    )
    SELECT c.source, c.day, c.total, c.open_n, c.ack_status, c.resolved_n, c.closed_n,
           c.ack_n, c.ack_sum, c.res_n, c.res_sum,
           coalesce(incidents_hist_build(ha.bs, ha.ns), ''::bytea),
           coalesce(incidents_hist_build(hr.bs, hr.ns), ''::bytea)
    FROM c LEFT JOIN ha USING (source, day) LEFT JOIN hr USING (source, day)
    ORDER BY c.day, c.source; -- a window's rows end up on few pages

    INSERT INTO incident_rollup_service (source, total, open_n, ack_status, resolved_n,
        closed_n, ack_n, ack_sum, res_n, res_sum, ack_hist, res_hist)
    WITH c AS (
        SELECT source, count(*) AS total,
               count(*) FILTER (WHERE status = 'open') AS open_n,
               count(*) FILTER (WHERE status = 'acknowledged') AS ack_status,
               count(*) FILTER (WHERE status = 'resolved') AS resolved_n,
               count(*) FILTER (WHERE status = 'closed') AS closed_n,
               count(a) AS ack_n, coalesce(sum(a), 0) AS ack_sum,
               count(r) AS res_n, coalesce(sum(r), 0) AS res_sum
        FROM incidents_rebuild_src GROUP BY source
    ), ha AS (
        SELECT source, array_agg(b) AS bs, array_agg(n) AS ns FROM (
            SELECT source, incidents_duration_bucket(a::double precision) AS b, count(*)::integer AS n
            FROM incidents_rebuild_src WHERE a IS NOT NULL GROUP BY 1, 2) x
        GROUP BY source
    ), hr AS (
        SELECT source, array_agg(b) AS bs, array_agg(n) AS ns FROM (
            SELECT source, incidents_duration_bucket(r::double precision) AS b, count(*)::integer AS n
            FROM incidents_rebuild_src WHERE r IS NOT NULL GROUP BY 1, 2) x
        GROUP BY source
    )
    SELECT c.source, c.total, c.open_n, c.ack_status, c.resolved_n, c.closed_n,
           c.ack_n, c.ack_sum, c.res_n, c.res_sum,
           coalesce(incidents_hist_build(ha.bs, ha.ns), ''::bytea),
           coalesce(incidents_hist_build(hr.bs, hr.ns), ''::bytea)
    FROM c LEFT JOIN ha USING (source) LEFT JOIN hr USING (source);
    DROP TABLE pg_temp.incidents_rebuild_src;
END
$$;

CREATE OR REPLACE FUNCTION incidents_notify_trigger()
RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    kind text;
    rec  incidents;
    prev text;
BEGIN
    IF TG_OP = 'INSERT' THEN
        kind := 'opened'; rec := NEW;
    ELSIF TG_OP = 'DELETE' THEN
        kind := 'deleted'; rec := OLD; prev := OLD.status;
    ELSE
        rec := NEW; prev := OLD.status;
        IF NEW.status = OLD.status THEN
            kind := 'updated';
        ELSIF NEW.status = 'acknowledged' THEN
            kind := 'acknowledged';
        ELSIF NEW.status = 'resolved' THEN
            kind := 'resolved';
        ELSIF NEW.status = 'closed' THEN
            kind := 'closed';
        ELSIF NEW.status = 'open' AND OLD.status IN ('resolved', 'closed') THEN
            kind := 'reopened';
        ELSE
            kind := 'updated';
        END IF;
    END IF;
    PERFORM pg_notify('promflow_incidents', json_build_object(
        'kind', kind, 'id', rec.id, 'status', rec.status,
        'prev_status', prev, 'source', left(incidents_service(rec.source), 200))::text);
    RETURN NULL;
END
$$;

-- Count the rows of an adopted table, and rows that the rules above count
-- differently from version 3. A table whose rollups already agree (every
-- table promflow created and only promflow wrote) is not rebuilt.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM incidents
               WHERE source IS NULL OR (resolved_at IS NOT NULL AND status NOT IN ('resolved', 'closed')))
       OR (SELECT count(*) FROM incidents) <> (SELECT coalesce(sum(total), 0) FROM incident_rollup_service) THEN
        PERFORM incidents_rebuild_rollups();
    END IF;
END
$$;
