-- promflow incidents schema: the analytics rollup rows in one column.
--
-- A trend reads thousands of incident_rollup_analytics rows, and sending
-- 24 columns a row costs the server far more than the rows themselves
-- (a send function call per value). packed holds the same numbers in one
-- bytea, kept by PostgreSQL itself (a stored generated column: every
-- writer's upsert recomputes it, so it is exact for every writer), and the
-- reads fetch (period, key, packed). The layout, read by
-- decodePackedRollup in analytics_sql.go:
--
--   15 big-endian int8: total, ack_n, res_n, det_n, rfs_n, auto_resolved,
--       reopened, ack_le_60, ack_le_300, ack_le_900, ack_le_3600,
--       res_le_1800, res_le_3600, res_le_14400, res_le_86400
--   4 numerics in their binary send format (self-delimiting: the digit
--       count comes first): ack_sum, res_sum, det_sum, rfs_sum
--   3 histograms, each a big-endian int2 length then its bytes: ack_hist,
--       res_hist, det_hist
CREATE OR REPLACE FUNCTION incidents_analytics_pack(
    total bigint, ack_n bigint, res_n bigint, det_n bigint, rfs_n bigint, auto_resolved bigint,
    reopened bigint, ack_le_60 bigint, ack_le_300 bigint, ack_le_900 bigint, ack_le_3600 bigint,
    res_le_1800 bigint, res_le_3600 bigint, res_le_14400 bigint, res_le_86400 bigint,
    ack_sum numeric, res_sum numeric, det_sum numeric, rfs_sum numeric,
    ack_hist bytea, res_hist bytea, det_hist bytea)
RETURNS bytea LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT int8send(total) || int8send(ack_n) || int8send(res_n) || int8send(det_n) || int8send(rfs_n)
        || int8send(auto_resolved) || int8send(reopened)
        || int8send(ack_le_60) || int8send(ack_le_300) || int8send(ack_le_900) || int8send(ack_le_3600)
        || int8send(res_le_1800) || int8send(res_le_3600) || int8send(res_le_14400) || int8send(res_le_86400)
        || numeric_send(ack_sum) || numeric_send(res_sum) || numeric_send(det_sum) || numeric_send(rfs_sum)
        || int2send(length(ack_hist)::smallint) || ack_hist
        || int2send(length(res_hist)::smallint) || res_hist
        || int2send(length(det_hist)::smallint) || det_hist
$$;

ALTER TABLE incident_rollup_analytics ADD COLUMN IF NOT EXISTS packed bytea
    GENERATED ALWAYS AS (incidents_analytics_pack(total, ack_n, res_n, det_n, rfs_n, auto_resolved,
        reopened, ack_le_60, ack_le_300, ack_le_900, ack_le_3600,
        res_le_1800, res_le_3600, res_le_14400, res_le_86400,
        ack_sum, res_sum, det_sum, rfs_sum, ack_hist, res_hist, det_hist)) STORED,
    -- In line and uncompressed, like the histograms: a read is a plain
    -- copy. (The largest row, three full histograms twice, stays under a
    -- page.) In the same statement, so that the rewrite stores it so.
    ALTER COLUMN packed SET STORAGE PLAIN;
