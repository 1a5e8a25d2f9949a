-- A stand-in for the original platform's database, written for promflow's
-- tests from the column list of issue 11 (not a copy of the original file).
-- Its writers supply every id themselves, leave source empty when they do
-- not know it, and keep resolved_at when they set a resolved incident back
-- to open.

CREATE TABLE incidents (
    id              UUID PRIMARY KEY,
    title           VARCHAR(512) NOT NULL,
    severity        VARCHAR(50)  NOT NULL,
    source          VARCHAR(255),
    description     TEXT DEFAULT '',
    -- one of: open, acknowledged, resolved, closed
    status          VARCHAR(50)  NOT NULL DEFAULT 'open',
    labels          JSONB DEFAULT '{}',
    assigned_to     VARCHAR(255),
    ack_token       VARCHAR(64) UNIQUE,
    resolve_token   VARCHAR(64) UNIQUE,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    acknowledged_at TIMESTAMPTZ,
    resolved_at     TIMESTAMPTZ
);

CREATE INDEX idx_incidents_status     ON incidents (status);
CREATE INDEX idx_incidents_severity   ON incidents (severity);
CREATE INDEX idx_incidents_created_at ON incidents (created_at DESC);

CREATE TABLE alerts (
    id          UUID PRIMARY KEY,
    source      VARCHAR(255),
    severity    VARCHAR(50),
    title       VARCHAR(512) NOT NULL,
    description TEXT,
    labels      JSONB DEFAULT '{}',
    received_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

CREATE TABLE incident_alerts (
    alert_id    UUID NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    incident_id UUID NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    linked_at   TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    PRIMARY KEY (alert_id, incident_id)
);

CREATE TABLE engineers (
    id         UUID PRIMARY KEY,
    name       VARCHAR(255) NOT NULL,
    email      VARCHAR(255) UNIQUE,
    on_call    BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
