-- promflow incidents schema, version 2: the change feed.
--
-- Every row change is announced on the channel promflow_incidents with a
-- compact JSON payload (kind, id, status, previous status, source); the
-- subscriber fetches the row itself, so payloads stay far below the 8000-byte
-- NOTIFY limit whatever the row holds.

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
        'prev_status', prev, 'source', left(rec.source, 200))::text);
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION incidents_notify_truncate()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('promflow_incidents', '{"kind":"truncated"}');
    RETURN NULL;
END
$$;

CREATE TRIGGER incidents_notify
    AFTER INSERT OR UPDATE OR DELETE ON incidents
    FOR EACH ROW EXECUTE FUNCTION incidents_notify_trigger();
CREATE TRIGGER incidents_notify_truncate
    AFTER TRUNCATE ON incidents
    FOR EACH STATEMENT EXECUTE FUNCTION incidents_notify_truncate();
