-- promflow incidents schema: the packed rollup column, histograms compacted.
--
-- Migration 0007 packs each histogram as its raw bytes (4-byte counters).
-- A counter is at most its row's total, so most rows need one byte per
-- counter: a week's histograms travel in a quarter of the bytes, and a
-- trend's read time follows the bytes. This migration replaces packed with
-- the same numbers in a layout whose histograms are compacted (0007's
-- column cannot be altered in place: a generated column's expression is
-- fixed, so it is dropped and added again, one table rewrite). The layout,
-- read by decodePacked in analytics_sql.go:
--
--   15 big-endian int8: total, ack_n, res_n, det_n, rfs_n, auto_resolved,
--       reopened, ack_le_60, ack_le_300, ack_le_900, ack_le_3600,
--       res_le_1800, res_le_3600, res_le_14400, res_le_86400
--   4 numerics in their binary send format (self-delimiting: the digit
--       count comes first): ack_sum, res_sum, det_sum, rfs_sum
--   3 histograms (ack_hist, res_hist, det_hist), each one byte w, the
--       width of its counters: 0 for an empty histogram (nothing follows),
--       else a big-endian int2 slot count n, the int2 first slot, and n
--       big-endian counters of w bytes; w is 1 when the row's total is
--       below 256, 2 below 65,536, else 4.
CREATE OR REPLACE FUNCTION incidents_hist_pack(h bytea, total bigint)
RETURNS bytea LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN h IS NULL OR length(h) < 6 THEN '\x00'::bytea
        WHEN total >= 65536 THEN '\x04'::bytea || int2send(((length(h) - 2) / 4)::smallint) || h
        ELSE (SELECT set_byte('\x00'::bytea, 0, ww.w) || int2send(((length(h) - 2) / 4)::smallint)
                     || substring(h from 1 for 2)
                     || string_agg(substring(h from 7 + 4 * i - ww.w for ww.w), ''::bytea ORDER BY i)
              FROM (SELECT CASE WHEN total < 256 THEN 1 ELSE 2 END AS w) ww
              CROSS JOIN generate_series(0, (length(h) - 2) / 4 - 1) AS i
              GROUP BY ww.w)
    END
$$;

CREATE OR REPLACE FUNCTION incidents_analytics_pack_compact(
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
        || incidents_hist_pack(ack_hist, total)
        || incidents_hist_pack(res_hist, total)
        || incidents_hist_pack(det_hist, total)
$$;

ALTER TABLE incident_rollup_analytics DROP COLUMN IF EXISTS packed;
DROP FUNCTION IF EXISTS incidents_analytics_pack(bigint, bigint, bigint, bigint, bigint, bigint,
    bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint,
    numeric, numeric, numeric, numeric, bytea, bytea, bytea);

ALTER TABLE incident_rollup_analytics ADD COLUMN packed bytea
    GENERATED ALWAYS AS (incidents_analytics_pack_compact(total, ack_n, res_n, det_n, rfs_n, auto_resolved,
        reopened, ack_le_60, ack_le_300, ack_le_900, ack_le_3600,
        res_le_1800, res_le_3600, res_le_14400, res_le_86400,
        ack_sum, res_sum, det_sum, rfs_sum, ack_hist, res_hist, det_hist)) STORED,
    -- In line and uncompressed, as in 0007.
    ALTER COLUMN packed SET STORAGE PLAIN;
