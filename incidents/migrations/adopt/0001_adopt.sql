-- promflow incidents schema, version 1, for an incidents table that existed
-- before promflow: the original platform's, or any other writer's.
--
-- Migrate applies this file instead of 0001_schema.sql when it finds an
-- incidents table and no promflow migration recorded. It adds what promflow
-- needs and changes no existing row of the original schema: no column is
-- retyped, source, labels and description stay nullable (NULL source is the
-- service "unknown" when read), extra columns, tables, indexes and
-- constraints are left alone, and the checks promflow adds are NOT VALID, so
-- rows written before are not checked against them. Only a NULL in a column
-- the original schema declares NOT NULL (title, severity, status,
-- created_at, updated_at), which an original table cannot hold, is filled as
-- version 1 does, so that the column can be NOT NULL. Rollups are built by
-- version 4, once the rules that count such rows are in place.

-- Columns promflow reads, for tables that lack some (adding a nullable
-- column, or one with a constant default, rewrites nothing).
ALTER TABLE incidents
    ADD COLUMN IF NOT EXISTS description     text,
    ADD COLUMN IF NOT EXISTS labels          jsonb DEFAULT '{}'::jsonb,
    ADD COLUMN IF NOT EXISTS assigned_to     text,
    ADD COLUMN IF NOT EXISTS created_at      timestamptz DEFAULT now(),
    ADD COLUMN IF NOT EXISTS updated_at      timestamptz DEFAULT now(),
    ADD COLUMN IF NOT EXISTS acknowledged_at timestamptz,
    ADD COLUMN IF NOT EXISTS resolved_at     timestamptz,
    ADD COLUMN IF NOT EXISTS fingerprint     text,
    ADD COLUMN IF NOT EXISTS starts_at       timestamptz;

-- The original's writers supply ids; promflow's do not.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_attrdef d
                   JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
                   WHERE d.adrelid = 'incidents'::regclass AND a.attname = 'id') THEN
        ALTER TABLE incidents ALTER COLUMN id SET DEFAULT gen_random_uuid();
    END IF;
END
$$;

UPDATE incidents SET
    title = coalesce(title, ''), severity = coalesce(severity, 'warning'),
    status = coalesce(status, 'open'), created_at = coalesce(created_at, updated_at, now()),
    updated_at = coalesce(updated_at, created_at, now())
WHERE title IS NULL OR severity IS NULL OR status IS NULL OR created_at IS NULL OR updated_at IS NULL;
ALTER TABLE incidents
    ALTER COLUMN title SET NOT NULL, ALTER COLUMN severity SET NOT NULL,
    ALTER COLUMN status SET NOT NULL, ALTER COLUMN created_at SET NOT NULL,
    ALTER COLUMN updated_at SET NOT NULL;

-- The checks that hold for every writer. NOT VALID: new and updated rows are
-- checked, existing ones are not. (The checks tying status to timestamps
-- are left out: the original writes rows that disagree, see version 4.)
ALTER TABLE incidents
    ADD CONSTRAINT incidents_status_valid
        CHECK (status IN ('open', 'acknowledged', 'resolved', 'closed')) NOT VALID,
    ADD CONSTRAINT incidents_ack_after_creation
        CHECK (acknowledged_at IS NULL OR acknowledged_at >= created_at) NOT VALID,
    ADD CONSTRAINT incidents_resolve_after_creation
        CHECK (resolved_at IS NULL OR resolved_at >= created_at) NOT VALID,
    ADD CONSTRAINT incidents_episode_complete
        CHECK ((fingerprint IS NULL) = (starts_at IS NULL)) NOT VALID;

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
