-- promflow incidents schema, version 5: the edge cases of issue 12.
--
--   * alert_ends_at keeps Alertmanager's endsAt of the resolved notification
--     (Alertmanager's clock), next to starts_at (its startsAt, the episode
--     key). The lifecycle times created_at, acknowledged_at and resolved_at
--     come from the server's clock only, so MTTA and MTTR never mix clocks;
--     starts_at and alert_ends_at feed time-to-detect.
--   * resolved_by says who resolved the incident: 'api' (a REST call or
--     Store.Resolve), 'alertmanager' (a resolved notification) or
--     'reconciliation' (Store.Reconcile found its alert no longer active in
--     Alertmanager); resolution_note says why, in words. Both are NULL for
--     rows other programs resolved, and are read only while the status is
--     resolved or closed.
--   * every time column must be a finite time in years 1 to 9999 (UTC), the
--     range of the JSON form (toISOString) and of RFC 3339. NOT VALID: rows
--     written before are not checked (they are still read), new and updated
--     rows are; an insert of 'infinity' is refused by this check, with its
--     name as the message, before any trigger runs.
--
-- Nothing here rewrites a row: the columns are nullable without default and
-- the check is NOT VALID.

ALTER TABLE incidents
    ADD COLUMN IF NOT EXISTS alert_ends_at   timestamptz,
    ADD COLUMN IF NOT EXISTS resolved_by     text,
    ADD COLUMN IF NOT EXISTS resolution_note text;

CREATE OR REPLACE FUNCTION incidents_time_in_range(t timestamptz)
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT t IS NULL OR (t >= '0001-01-01 00:00:00+00'::timestamptz AND t < '10000-01-01 00:00:00+00'::timestamptz)
$$;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = 'incidents'::regclass
                   AND conname = 'incidents_times_within_years_1_to_9999') THEN
        ALTER TABLE incidents ADD CONSTRAINT incidents_times_within_years_1_to_9999 CHECK (
            incidents_time_in_range(created_at) AND incidents_time_in_range(updated_at)
            AND incidents_time_in_range(acknowledged_at) AND incidents_time_in_range(resolved_at)
            AND incidents_time_in_range(starts_at) AND incidents_time_in_range(alert_ends_at)) NOT VALID;
    END IF;
END
$$;

COMMENT ON CONSTRAINT incidents_times_within_years_1_to_9999 ON incidents IS
    'created_at, updated_at, acknowledged_at, resolved_at, starts_at and alert_ends_at must be finite times in years 1 to 9999 UTC';
