-- promflow incidents schema, version 3: rollups maintained per statement.
--
-- Version 1 updated the rollup rows from row triggers, in the order the
-- rows of a statement happened to be written. Two multi-row statements
-- touching the same services in different orders (an UPDATE by another
-- program, say, and a bulk close) could then deadlock on the rollup rows.
-- Here the triggers are statement triggers with transition tables: each
-- statement's changes are summed per service and per (service, day) first,
-- then applied in two sorted passes — service rows by source, then day rows
-- by (source, day) — so every single-statement transaction takes rollup
-- locks in one global order, and groups whose changes cancel out (an UPDATE
-- of the title, say) lock nothing.

DROP TRIGGER IF EXISTS incidents_rollup_ins_del ON incidents;
DROP TRIGGER IF EXISTS incidents_rollup_upd ON incidents;
DROP FUNCTION IF EXISTS incidents_rollup_trigger();
DROP FUNCTION IF EXISTS incidents_rollup_change(text, integer, text, numeric, numeric, text, numeric, numeric);

-- incidents_hist_merge adds the histogram d slot by slot into h.
CREATE OR REPLACE FUNCTION incidents_hist_merge(h bytea, d bytea)
RETURNS bytea LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    lo integer;
    i  integer;
BEGIN
    h := coalesce(h, ''::bytea);
    IF d IS NULL OR length(d) < 6 THEN
        RETURN h;
    END IF;
    lo := (get_byte(d, 0) << 8) | get_byte(d, 1);
    FOR i IN 0 .. (length(d) - 2) / 4 - 1 LOOP
        h := incidents_hist_bump(h, lo + i, incidents_hist_get(d, lo + i));
    END LOOP;
    RETURN h;
END
$$;

-- incidents_rollup_apply adds signed contributions (w = +1 for a row
-- version that appeared, -1 for one that went away) to both rollups. a and r
-- are the times to acknowledge and resolve in seconds.
CREATE OR REPLACE FUNCTION incidents_rollup_apply(
    p_source text[], p_day integer[], p_status text[], p_a numeric[], p_r numeric[], p_w integer[])
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF p_source IS NULL THEN
        RETURN;
    END IF;

    INSERT INTO incident_rollup_service AS t (source, total, open_n, ack_status, resolved_n, closed_n,
        ack_n, ack_sum, res_n, res_sum, ack_hist, res_hist)
    WITH d AS (
        SELECT * FROM unnest(p_source, p_day, p_status, p_a, p_r, p_w) AS d(source, day, status, a, r, w)
    ), c AS (
        SELECT source, sum(w) AS total,
               coalesce(sum(w) FILTER (WHERE status = 'open'), 0) AS open_n,
               coalesce(sum(w) FILTER (WHERE status = 'acknowledged'), 0) AS ack_status,
               coalesce(sum(w) FILTER (WHERE status = 'resolved'), 0) AS resolved_n,
               coalesce(sum(w) FILTER (WHERE status = 'closed'), 0) AS closed_n,
               coalesce(sum(w) FILTER (WHERE a IS NOT NULL), 0) AS ack_n,
               coalesce(sum(w * a), 0) AS ack_sum,
               coalesce(sum(w) FILTER (WHERE r IS NOT NULL), 0) AS res_n,
               coalesce(sum(w * r), 0) AS res_sum
        FROM d GROUP BY source
    ), ha AS (
        SELECT source, incidents_hist_build(array_agg(b), array_agg(n)) AS h FROM (
            SELECT source, incidents_duration_bucket(a::double precision) AS b, sum(w)::integer AS n
            FROM d WHERE a IS NOT NULL GROUP BY 1, 2 HAVING sum(w) <> 0) x
        GROUP BY source
    ), hr AS (
        SELECT source, incidents_hist_build(array_agg(b), array_agg(n)) AS h FROM (
            SELECT source, incidents_duration_bucket(r::double precision) AS b, sum(w)::integer AS n
            FROM d WHERE r IS NOT NULL GROUP BY 1, 2 HAVING sum(w) <> 0) x
        GROUP BY source
    )
    SELECT c.source, c.total, c.open_n, c.ack_status, c.resolved_n, c.closed_n,
           c.ack_n, c.ack_sum, c.res_n, c.res_sum,
           coalesce(ha.h, ''::bytea), coalesce(hr.h, ''::bytea)
    FROM c LEFT JOIN ha USING (source) LEFT JOIN hr USING (source)
    WHERE c.total <> 0 OR c.open_n <> 0 OR c.ack_status <> 0 OR c.resolved_n <> 0 OR c.closed_n <> 0
       OR c.ack_n <> 0 OR c.ack_sum <> 0 OR c.res_n <> 0 OR c.res_sum <> 0
       OR ha.h IS NOT NULL OR hr.h IS NOT NULL
    ORDER BY c.source
    ON CONFLICT (source) DO UPDATE SET
        total = t.total + excluded.total, open_n = t.open_n + excluded.open_n,
        ack_status = t.ack_status + excluded.ack_status, resolved_n = t.resolved_n + excluded.resolved_n,
        closed_n = t.closed_n + excluded.closed_n,
        ack_n = t.ack_n + excluded.ack_n, ack_sum = t.ack_sum + excluded.ack_sum,
        res_n = t.res_n + excluded.res_n, res_sum = t.res_sum + excluded.res_sum,
        ack_hist = incidents_hist_merge(t.ack_hist, excluded.ack_hist),
        res_hist = incidents_hist_merge(t.res_hist, excluded.res_hist);

    INSERT INTO incident_rollup_day AS t (source, day, total, open_n, ack_status, resolved_n, closed_n,
        ack_n, ack_sum, res_n, res_sum, ack_hist, res_hist)
    WITH d AS (
        SELECT * FROM unnest(p_source, p_day, p_status, p_a, p_r, p_w) AS d(source, day, status, a, r, w)
    ), c AS (
        SELECT source, day, sum(w) AS total,
               coalesce(sum(w) FILTER (WHERE status = 'open'), 0) AS open_n,
               coalesce(sum(w) FILTER (WHERE status = 'acknowledged'), 0) AS ack_status,
               coalesce(sum(w) FILTER (WHERE status = 'resolved'), 0) AS resolved_n,
               coalesce(sum(w) FILTER (WHERE status = 'closed'), 0) AS closed_n,
               coalesce(sum(w) FILTER (WHERE a IS NOT NULL), 0) AS ack_n,
               coalesce(sum(w * a), 0) AS ack_sum,
               coalesce(sum(w) FILTER (WHERE r IS NOT NULL), 0) AS res_n,
               coalesce(sum(w * r), 0) AS res_sum
        FROM d GROUP BY source, day
    ), ha AS (
        SELECT source, day, incidents_hist_build(array_agg(b), array_agg(n)) AS h FROM (
            SELECT source, day, incidents_duration_bucket(a::double precision) AS b, sum(w)::integer AS n
            FROM d WHERE a IS NOT NULL GROUP BY 1, 2, 3 HAVING sum(w) <> 0) x
        GROUP BY source, day
    ), hr AS (
        SELECT source, day, incidents_hist_build(array_agg(b), array_agg(n)) AS h FROM (
            SELECT source, day, incidents_duration_bucket(r::double precision) AS b, sum(w)::integer AS n
            FROM d WHERE r IS NOT NULL GROUP BY 1, 2, 3 HAVING sum(w) <> 0) x
        GROUP BY source, day
    )
    SELECT c.source, c.day, c.total, c.open_n, c.ack_status, c.resolved_n, c.closed_n,
           c.ack_n, c.ack_sum, c.res_n, c.res_sum,
           coalesce(ha.h, ''::bytea), coalesce(hr.h, ''::bytea)
    FROM c LEFT JOIN ha USING (source, day) LEFT JOIN hr USING (source, day)
    WHERE c.total <> 0 OR c.open_n <> 0 OR c.ack_status <> 0 OR c.resolved_n <> 0 OR c.closed_n <> 0
       OR c.ack_n <> 0 OR c.ack_sum <> 0 OR c.res_n <> 0 OR c.res_sum <> 0
       OR ha.h IS NOT NULL OR hr.h IS NOT NULL
    ORDER BY c.source, c.day
    ON CONFLICT (day, source) DO UPDATE SET
        total = t.total + excluded.total, open_n = t.open_n + excluded.open_n,
        ack_status = t.ack_status + excluded.ack_status, resolved_n = t.resolved_n + excluded.resolved_n,
        closed_n = t.closed_n + excluded.closed_n,
        ack_n = t.ack_n + excluded.ack_n, ack_sum = t.ack_sum + excluded.ack_sum,
        res_n = t.res_n + excluded.res_n, res_sum = t.res_sum + excluded.res_sum,
        ack_hist = incidents_hist_merge(t.ack_hist, excluded.ack_hist),
        res_hist = incidents_hist_merge(t.res_hist, excluded.res_hist);
END
$$;

-- incidents_rollup_stmt feeds a statement's transition tables to
-- incidents_rollup_apply: new row versions count +1, old ones -1, so an
-- UPDATE moves each changed incident from its old (service, day, status,
-- durations) to its new ones, and unchanged values cancel out.
CREATE OR REPLACE FUNCTION incidents_rollup_stmt()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM incidents_rollup_apply(array_agg(source), array_agg(day), array_agg(status),
                                       array_agg(a), array_agg(r), array_agg(w))
        FROM (SELECT source, floor(extract(epoch FROM created_at) / 86400)::integer AS day, status,
                     extract(epoch FROM acknowledged_at - created_at) AS a,
                     extract(epoch FROM resolved_at - created_at) AS r, 1 AS w
              FROM incidents_new) d;
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM incidents_rollup_apply(array_agg(source), array_agg(day), array_agg(status),
                                       array_agg(a), array_agg(r), array_agg(w))
        FROM (SELECT source, floor(extract(epoch FROM created_at) / 86400)::integer AS day, status,
                     extract(epoch FROM acknowledged_at - created_at) AS a,
                     extract(epoch FROM resolved_at - created_at) AS r, -1 AS w
              FROM incidents_old) d;
    ELSE
        PERFORM incidents_rollup_apply(array_agg(source), array_agg(day), array_agg(status),
                                       array_agg(a), array_agg(r), array_agg(w))
        FROM (SELECT source, floor(extract(epoch FROM created_at) / 86400)::integer AS day, status,
                     extract(epoch FROM acknowledged_at - created_at) AS a,
                     extract(epoch FROM resolved_at - created_at) AS r, 1 AS w
              FROM incidents_new
              UNION ALL
              SELECT source, floor(extract(epoch FROM created_at) / 86400)::integer, status,
                     extract(epoch FROM acknowledged_at - created_at),
                     extract(epoch FROM resolved_at - created_at), -1
              FROM incidents_old) d;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER incidents_rollup_ins
    AFTER INSERT ON incidents REFERENCING NEW TABLE AS incidents_new
    FOR EACH STATEMENT EXECUTE FUNCTION incidents_rollup_stmt();
CREATE TRIGGER incidents_rollup_upd
    AFTER UPDATE ON incidents REFERENCING OLD TABLE AS incidents_old NEW TABLE AS incidents_new
    FOR EACH STATEMENT EXECUTE FUNCTION incidents_rollup_stmt();
CREATE TRIGGER incidents_rollup_del
    AFTER DELETE ON incidents REFERENCING OLD TABLE AS incidents_old
    FOR EACH STATEMENT EXECUTE FUNCTION incidents_rollup_stmt();
