-- promflow incidents schema, version 1.
--
-- The incidents table keeps the columns of the original platform; fingerprint
-- and starts_at identify an Alertmanager firing episode. Rollup tables are
-- maintained by row triggers, so they stay exact whoever writes the table.

CREATE TABLE IF NOT EXISTS incidents (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    title           text NOT NULL,
    severity        text NOT NULL DEFAULT 'warning',
    source          text NOT NULL,
    description     text,
    status          text NOT NULL DEFAULT 'open',
    labels          jsonb NOT NULL DEFAULT '{}'::jsonb,
    assigned_to     text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    acknowledged_at timestamptz,
    resolved_at     timestamptz
);

ALTER TABLE incidents ADD COLUMN IF NOT EXISTS fingerprint text;
ALTER TABLE incidents ADD COLUMN IF NOT EXISTS starts_at timestamptz;

-- Rows of an adopted table may hold NULLs where this schema needs values.
UPDATE incidents SET
    title = coalesce(title, ''), severity = coalesce(severity, 'warning'),
    source = coalesce(source, 'unknown'), status = coalesce(status, 'open'),
    labels = coalesce(labels, '{}'::jsonb), created_at = coalesce(created_at, updated_at, now()),
    updated_at = coalesce(updated_at, created_at, now())
WHERE title IS NULL OR severity IS NULL OR source IS NULL OR status IS NULL
   OR labels IS NULL OR created_at IS NULL OR updated_at IS NULL;
ALTER TABLE incidents
    ALTER COLUMN title SET NOT NULL, ALTER COLUMN severity SET NOT NULL,
    ALTER COLUMN source SET NOT NULL, ALTER COLUMN status SET NOT NULL,
    ALTER COLUMN labels SET NOT NULL, ALTER COLUMN created_at SET NOT NULL,
    ALTER COLUMN updated_at SET NOT NULL;

ALTER TABLE incidents
    ADD CONSTRAINT incidents_status_valid
        CHECK (status IN ('open', 'acknowledged', 'resolved', 'closed')),
    ADD CONSTRAINT incidents_ack_after_creation
        CHECK (acknowledged_at IS NULL OR acknowledged_at >= created_at),
    ADD CONSTRAINT incidents_resolve_after_creation
        CHECK (resolved_at IS NULL OR resolved_at >= created_at),
    ADD CONSTRAINT incidents_acknowledged_has_time
        CHECK (status <> 'acknowledged' OR acknowledged_at IS NOT NULL),
    ADD CONSTRAINT incidents_open_not_resolved
        CHECK (status NOT IN ('open', 'acknowledged') OR resolved_at IS NULL),
    ADD CONSTRAINT incidents_resolved_has_time
        CHECK (status <> 'resolved' OR resolved_at IS NOT NULL),
    ADD CONSTRAINT incidents_episode_complete
        CHECK ((fingerprint IS NULL) = (starts_at IS NULL));

-- One incident per Alertmanager firing episode.
CREATE UNIQUE INDEX IF NOT EXISTS incidents_episode_key
    ON incidents (fingerprint, starts_at) WHERE fingerprint IS NOT NULL;
-- Details, newest first, closed excluded; overall and per service.
CREATE INDEX IF NOT EXISTS incidents_details_idx
    ON incidents (created_at DESC, id DESC) WHERE status <> 'closed';
CREATE INDEX IF NOT EXISTS incidents_details_source_idx
    ON incidents (source, created_at DESC, id DESC) WHERE status <> 'closed';
-- Window edges and exact percentiles over small windows: covering, so that
-- they are answered by an index-only scan whatever the heap order.
CREATE INDEX IF NOT EXISTS incidents_created_idx
    ON incidents (created_at) INCLUDE (source, status, acknowledged_at, resolved_at);

-- incidents_duration_bucket maps a duration in seconds to its histogram slot:
-- slot 1 holds [0, 1/16 s), slots 2..241 are log buckets with 8 per doubling
-- from 1/16 s (slot k covers [2^((k-2)/8) / 16, 2^((k-1)/8) / 16)), slot 242
-- holds everything from 2^26 s (about 2.1 years) up. Slot 0 stands for "no
-- such duration" and is never counted.
CREATE OR REPLACE FUNCTION incidents_duration_bucket(seconds double precision)
RETURNS integer LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN seconds IS NULL THEN 0
        WHEN seconds < 0.0625 THEN 1
        ELSE least(242, 2 + floor(8 * ln(seconds * 16) / ln(2))::integer)
    END
$$;

-- A histogram is a bytea: empty when all counts are zero, else a big-endian
-- int2 "lo" (the first slot stored) followed by one big-endian int4 counter
-- per slot from lo up. Only the span of slots ever used is stored, so a
-- day's histogram is usually a few hundred bytes and reading it is a plain
-- copy, far cheaper than decoding an integer array.
CREATE OR REPLACE FUNCTION incidents_hist_get(h bytea, slot integer)
RETURNS integer LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN length(h) < 6 THEN 0
        WHEN slot < ((get_byte(h, 0) << 8) | get_byte(h, 1)) THEN 0
        WHEN 2 + 4 * (slot - ((get_byte(h, 0) << 8) | get_byte(h, 1))) + 4 > length(h) THEN 0
        ELSE (get_byte(h, 2 + 4 * (slot - ((get_byte(h, 0) << 8) | get_byte(h, 1)))) << 24)
           | (get_byte(h, 3 + 4 * (slot - ((get_byte(h, 0) << 8) | get_byte(h, 1)))) << 16)
           | (get_byte(h, 4 + 4 * (slot - ((get_byte(h, 0) << 8) | get_byte(h, 1)))) << 8)
           |  get_byte(h, 5 + 4 * (slot - ((get_byte(h, 0) << 8) | get_byte(h, 1))))
    END
$$;

-- incidents_hist_bump adds delta to one slot, widening the stored span if
-- needed.
CREATE OR REPLACE FUNCTION incidents_hist_bump(h bytea, slot integer, delta integer)
RETURNS bytea LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    lo integer;
    n  integer;
BEGIN
    IF delta = 0 THEN
        RETURN h;
    END IF;
    IF h IS NULL OR length(h) < 6 THEN
        RETURN int2send(slot::smallint) || int4send(delta);
    END IF;
    lo := (get_byte(h, 0) << 8) | get_byte(h, 1);
    n := (length(h) - 2) / 4;
    IF slot < lo THEN
        h := int2send(slot::smallint) || decode(repeat('00', 4 * (lo - slot)), 'hex') || substring(h FROM 3);
        lo := slot;
    ELSIF slot >= lo + n THEN
        h := h || decode(repeat('00', 4 * (slot - lo - n + 1)), 'hex');
    END IF;
    RETURN overlay(h PLACING int4send(incidents_hist_get(h, slot) + delta) FROM 3 + 4 * (slot - lo) FOR 4);
END
$$;

-- incidents_hist_build makes a histogram from (slot, count) pairs.
CREATE OR REPLACE FUNCTION incidents_hist_build(slots integer[], counts integer[])
RETURNS bytea LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce((
        SELECT int2send(lo::smallint) || string_agg(int4send(coalesce(x.n, 0)), ''::bytea ORDER BY g.s)
        FROM (SELECT min(s) AS lo, max(s) AS hi FROM unnest(slots) AS s) AS b
        CROSS JOIN LATERAL generate_series(b.lo, b.hi) AS g(s)
        LEFT JOIN unnest(slots, counts) AS x(s, n) ON x.s = g.s
        WHERE b.lo IS NOT NULL
        GROUP BY b.lo), ''::bytea)
$$;

CREATE TABLE IF NOT EXISTS incident_rollup_service (
    source     text PRIMARY KEY,
    total      bigint  NOT NULL DEFAULT 0,
    open_n     bigint  NOT NULL DEFAULT 0,
    ack_status bigint  NOT NULL DEFAULT 0,
    resolved_n bigint  NOT NULL DEFAULT 0,
    closed_n   bigint  NOT NULL DEFAULT 0,
    ack_n      bigint  NOT NULL DEFAULT 0,
    ack_sum    numeric NOT NULL DEFAULT 0,
    res_n      bigint  NOT NULL DEFAULT 0,
    res_sum    numeric NOT NULL DEFAULT 0,
    ack_hist   bytea NOT NULL DEFAULT ''::bytea,
    res_hist   bytea NOT NULL DEFAULT ''::bytea
);

-- day is the UTC day of created_at, in days since 1970-01-01.
CREATE TABLE IF NOT EXISTS incident_rollup_day (
    source     text    NOT NULL,
    day        integer NOT NULL,
    total      bigint  NOT NULL DEFAULT 0,
    open_n     bigint  NOT NULL DEFAULT 0,
    ack_status bigint  NOT NULL DEFAULT 0,
    resolved_n bigint  NOT NULL DEFAULT 0,
    closed_n   bigint  NOT NULL DEFAULT 0,
    ack_n      bigint  NOT NULL DEFAULT 0,
    ack_sum    numeric NOT NULL DEFAULT 0,
    res_n      bigint  NOT NULL DEFAULT 0,
    res_sum    numeric NOT NULL DEFAULT 0,
    ack_hist   bytea NOT NULL DEFAULT ''::bytea,
    res_hist   bytea NOT NULL DEFAULT ''::bytea,
    PRIMARY KEY (day, source)
);

-- Keep the histogram arrays inline and uncompressed: reads stay cheap.
ALTER TABLE incident_rollup_service ALTER COLUMN ack_hist SET STORAGE PLAIN,
                                    ALTER COLUMN res_hist SET STORAGE PLAIN;
ALTER TABLE incident_rollup_day ALTER COLUMN ack_hist SET STORAGE PLAIN,
                                ALTER COLUMN res_hist SET STORAGE PLAIN;

-- incidents_rollup_change moves one incident's contribution within the rollup
-- rows of (p_source, p_day): it removes the old values (o_*, all NULL for an
-- INSERT) and adds the new ones (n_*, all NULL for a DELETE). a and r are the
-- times to acknowledge and resolve in seconds. It upserts the service row,
-- then the day row: one statement each.
CREATE OR REPLACE FUNCTION incidents_rollup_change(
    p_source text, p_day integer,
    o_status text, o_a numeric, o_r numeric,
    n_status text, n_a numeric, n_r numeric)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    dt  integer := (n_status IS NOT NULL)::integer - (o_status IS NOT NULL)::integer;
    dop integer := coalesce((n_status = 'open')::integer, 0) - coalesce((o_status = 'open')::integer, 0);
    dak integer := coalesce((n_status = 'acknowledged')::integer, 0) - coalesce((o_status = 'acknowledged')::integer, 0);
    drs integer := coalesce((n_status = 'resolved')::integer, 0) - coalesce((o_status = 'resolved')::integer, 0);
    dcl integer := coalesce((n_status = 'closed')::integer, 0) - coalesce((o_status = 'closed')::integer, 0);
    oan integer := (o_a IS NOT NULL)::integer;
    nan integer := (n_a IS NOT NULL)::integer;
    orn integer := (o_r IS NOT NULL)::integer;
    nrn integer := (n_r IS NOT NULL)::integer;
    das numeric := coalesce(n_a, 0) - coalesce(o_a, 0);
    drsum numeric := coalesce(n_r, 0) - coalesce(o_r, 0);
    oab integer := incidents_duration_bucket(o_a::double precision);
    nab integer := incidents_duration_bucket(n_a::double precision);
    orb integer := incidents_duration_bucket(o_r::double precision);
    nrb integer := incidents_duration_bucket(n_r::double precision);
    zero bytea := ''::bytea;
BEGIN
    INSERT INTO incident_rollup_service AS t (source, total, open_n, ack_status, resolved_n, closed_n,
        ack_n, ack_sum, res_n, res_sum, ack_hist, res_hist)
    VALUES (p_source, dt, dop, dak, drs, dcl, nan - oan, das, nrn - orn, drsum,
        incidents_hist_bump(incidents_hist_bump(zero, oab, -oan), nab, nan),
        incidents_hist_bump(incidents_hist_bump(zero, orb, -orn), nrb, nrn))
    ON CONFLICT (source) DO UPDATE SET
        total = t.total + dt, open_n = t.open_n + dop, ack_status = t.ack_status + dak,
        resolved_n = t.resolved_n + drs, closed_n = t.closed_n + dcl,
        ack_n = t.ack_n + nan - oan, ack_sum = t.ack_sum + das,
        res_n = t.res_n + nrn - orn, res_sum = t.res_sum + drsum,
        ack_hist = incidents_hist_bump(incidents_hist_bump(t.ack_hist, oab, -oan), nab, nan),
        res_hist = incidents_hist_bump(incidents_hist_bump(t.res_hist, orb, -orn), nrb, nrn);
    INSERT INTO incident_rollup_day AS t (source, day, total, open_n, ack_status, resolved_n, closed_n,
        ack_n, ack_sum, res_n, res_sum, ack_hist, res_hist)
    VALUES (p_source, p_day, dt, dop, dak, drs, dcl, nan - oan, das, nrn - orn, drsum,
        incidents_hist_bump(incidents_hist_bump(zero, oab, -oan), nab, nan),
        incidents_hist_bump(incidents_hist_bump(zero, orb, -orn), nrb, nrn))
    ON CONFLICT (day, source) DO UPDATE SET
        total = t.total + dt, open_n = t.open_n + dop, ack_status = t.ack_status + dak,
        resolved_n = t.resolved_n + drs, closed_n = t.closed_n + dcl,
        ack_n = t.ack_n + nan - oan, ack_sum = t.ack_sum + das,
        res_n = t.res_n + nrn - orn, res_sum = t.res_sum + drsum,
        ack_hist = incidents_hist_bump(incidents_hist_bump(t.ack_hist, oab, -oan), nab, nan),
        res_hist = incidents_hist_bump(incidents_hist_bump(t.res_hist, orb, -orn), nrb, nrn);
END
$$;

-- The row trigger: an UPDATE that keeps the (source, day) key changes one
-- service row and one day row; one that moves an incident applies the two
-- keys in (source, day) order, so that concurrent writers lock rollup rows
-- in one global order (a service row before its day rows) and cannot
-- deadlock on them.
CREATE OR REPLACE FUNCTION incidents_rollup_trigger()
RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    od integer;
    nd integer;
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM incidents_rollup_change(NEW.source, floor(extract(epoch FROM NEW.created_at) / 86400)::integer,
            NULL, NULL, NULL,
            NEW.status, extract(epoch FROM NEW.acknowledged_at - NEW.created_at), extract(epoch FROM NEW.resolved_at - NEW.created_at));
        RETURN NULL;
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM incidents_rollup_change(OLD.source, floor(extract(epoch FROM OLD.created_at) / 86400)::integer,
            OLD.status, extract(epoch FROM OLD.acknowledged_at - OLD.created_at), extract(epoch FROM OLD.resolved_at - OLD.created_at),
            NULL, NULL, NULL);
        RETURN NULL;
    END IF;
    od := floor(extract(epoch FROM OLD.created_at) / 86400)::integer;
    nd := floor(extract(epoch FROM NEW.created_at) / 86400)::integer;
    IF OLD.source = NEW.source AND od = nd THEN
        PERFORM incidents_rollup_change(NEW.source, nd,
            OLD.status, extract(epoch FROM OLD.acknowledged_at - OLD.created_at), extract(epoch FROM OLD.resolved_at - OLD.created_at),
            NEW.status, extract(epoch FROM NEW.acknowledged_at - NEW.created_at), extract(epoch FROM NEW.resolved_at - NEW.created_at));
    ELSIF (OLD.source, od) < (NEW.source, nd) THEN
        PERFORM incidents_rollup_change(OLD.source, od,
            OLD.status, extract(epoch FROM OLD.acknowledged_at - OLD.created_at), extract(epoch FROM OLD.resolved_at - OLD.created_at),
            NULL, NULL, NULL);
        PERFORM incidents_rollup_change(NEW.source, nd, NULL, NULL, NULL,
            NEW.status, extract(epoch FROM NEW.acknowledged_at - NEW.created_at), extract(epoch FROM NEW.resolved_at - NEW.created_at));
    ELSE
        PERFORM incidents_rollup_change(NEW.source, nd, NULL, NULL, NULL,
            NEW.status, extract(epoch FROM NEW.acknowledged_at - NEW.created_at), extract(epoch FROM NEW.resolved_at - NEW.created_at));
        PERFORM incidents_rollup_change(OLD.source, od,
            OLD.status, extract(epoch FROM OLD.acknowledged_at - OLD.created_at), extract(epoch FROM OLD.resolved_at - OLD.created_at),
            NULL, NULL, NULL);
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION incidents_rollup_truncate()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM incident_rollup_day;
    DELETE FROM incident_rollup_service;
    RETURN NULL;
END
$$;

CREATE TRIGGER incidents_rollup_ins_del
    AFTER INSERT OR DELETE ON incidents
    FOR EACH ROW EXECUTE FUNCTION incidents_rollup_trigger();
CREATE TRIGGER incidents_rollup_upd
    AFTER UPDATE OF source, status, created_at, acknowledged_at, resolved_at ON incidents
    FOR EACH ROW
    WHEN (OLD.source IS DISTINCT FROM NEW.source
       OR OLD.status IS DISTINCT FROM NEW.status
       OR OLD.created_at IS DISTINCT FROM NEW.created_at
       OR OLD.acknowledged_at IS DISTINCT FROM NEW.acknowledged_at
       OR OLD.resolved_at IS DISTINCT FROM NEW.resolved_at)
    EXECUTE FUNCTION incidents_rollup_trigger();
CREATE TRIGGER incidents_rollup_truncate
    AFTER TRUNCATE ON incidents
    FOR EACH STATEMENT EXECUTE FUNCTION incidents_rollup_truncate();

-- incidents_rebuild_rollups recomputes both rollup tables from the base table
-- (for imports done with the triggers disabled). It locks out writers while
-- it runs.
CREATE OR REPLACE FUNCTION incidents_rebuild_rollups()
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE incidents IN SHARE MODE;
    LOCK TABLE incident_rollup_service, incident_rollup_day IN EXCLUSIVE MODE;
    DELETE FROM incident_rollup_day;
    DELETE FROM incident_rollup_service;

    DROP TABLE IF EXISTS pg_temp.incidents_rebuild_src;
    CREATE TEMP TABLE incidents_rebuild_src ON COMMIT DROP AS
    SELECT source,
           floor(extract(epoch FROM created_at) / 86400)::integer AS day,
           status,
           extract(epoch FROM acknowledged_at - created_at) AS a,
           extract(epoch FROM resolved_at - created_at) AS r
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

-- An incidents table that existed before (the original platform's) already
-- holds rows: count them into the rollups. On a new table this is a no-op.
SELECT incidents_rebuild_rollups();
