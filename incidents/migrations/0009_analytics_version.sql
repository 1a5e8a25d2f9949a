-- promflow incidents schema: a version of the analytics rollup.
--
-- incident_rollup_version holds one counter, raised once by every
-- transaction that writes incident_rollup_analytics (whoever writes: the
-- incidents triggers, incidents_rebuild_rollups, a TRUNCATE, plain SQL).
-- A reader that reads the counter and rollup rows in one snapshot, and
-- later reads the same counter, knows that no rollup row has changed in
-- between: an all-time breakdown whose rows have not changed is answered
-- from the Store's copy after a one-row read (see docs/design.md,
-- "Analytics reads").
--
-- The counter is raised by an AFTER statement trigger, so a writer locks
-- its row after the rollup rows (which incidents_analytics_apply locks in
-- one order), and at most once per transaction: a transaction-local
-- setting holds the id of the transaction that raised it (a 64-bit id,
-- never reused; a rolled-back savepoint undoes both).
CREATE TABLE IF NOT EXISTS incident_rollup_version (
    id smallint PRIMARY KEY CHECK (id = 0),
    v  bigint   NOT NULL
);
INSERT INTO incident_rollup_version (id, v) VALUES (0, 1) ON CONFLICT (id) DO NOTHING;

CREATE OR REPLACE FUNCTION incidents_rollup_version_bump()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('incidents.rollup_version_raised', true) IS DISTINCT FROM pg_current_xact_id()::text THEN
        UPDATE incident_rollup_version SET v = v + 1 WHERE id = 0;
        PERFORM set_config('incidents.rollup_version_raised', pg_current_xact_id()::text, true);
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS incident_rollup_analytics_version ON incident_rollup_analytics;
DROP TRIGGER IF EXISTS incident_rollup_analytics_version_truncate ON incident_rollup_analytics;
CREATE TRIGGER incident_rollup_analytics_version
    AFTER INSERT OR UPDATE OR DELETE ON incident_rollup_analytics
    FOR EACH STATEMENT EXECUTE FUNCTION incidents_rollup_version_bump();
CREATE TRIGGER incident_rollup_analytics_version_truncate
    AFTER TRUNCATE ON incident_rollup_analytics
    FOR EACH STATEMENT EXECUTE FUNCTION incidents_rollup_version_bump();
