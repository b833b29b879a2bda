-- DurableAgents SQLite schema 1.0.0. Released: never edit; add schema-x.y.z.sql instead.
-- Times are Unix milliseconds (UTC). Payloads are UTF-8 JSON text.

CREATE TABLE instances (
    instance_id         TEXT    NOT NULL PRIMARY KEY,
    execution_id        TEXT    NOT NULL,
    name                TEXT    NOT NULL,
    version             TEXT,
    status              TEXT    NOT NULL,
    input               TEXT,
    output              TEXT,
    custom_status       TEXT,
    failure             TEXT,
    created_at          INTEGER NOT NULL,
    last_updated_at     INTEGER NOT NULL,
    completed_at        INTEGER,
    parent_instance_id  TEXT,
    history_length      INTEGER NOT NULL DEFAULT 0,
    lock_owner          TEXT,
    lock_expires_at     INTEGER
);
CREATE INDEX ix_instances_created ON instances (created_at DESC, instance_id DESC);
CREATE INDEX ix_instances_status ON instances (status, created_at);
CREATE INDEX ix_instances_name ON instances (name, created_at);

CREATE TABLE history (
    instance_id  TEXT    NOT NULL,
    seq          INTEGER NOT NULL,
    event_type   TEXT    NOT NULL,
    timestamp    INTEGER NOT NULL,
    data         TEXT    NOT NULL,
    PRIMARY KEY (instance_id, seq)
) WITHOUT ROWID;

-- Orchestration inboxes: activity results, timers (future visible_at), events, control messages.
CREATE TABLE inbox (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id   TEXT    NOT NULL,
    execution_id  TEXT,
    event_type    TEXT    NOT NULL,
    visible_at    INTEGER NOT NULL,
    data          TEXT    NOT NULL
);
CREATE INDEX ix_inbox_visible ON inbox (visible_at, id);
CREATE INDEX ix_inbox_instance ON inbox (instance_id, visible_at, id);

CREATE TABLE activities (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id      TEXT    NOT NULL,
    execution_id     TEXT    NOT NULL,
    task_id          INTEGER NOT NULL,
    name             TEXT    NOT NULL,
    input            TEXT,
    visible_at       INTEGER NOT NULL,
    lock_owner       TEXT,
    lock_expires_at  INTEGER,
    dequeue_count    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX ix_activities_visible ON activities (visible_at, id);
CREATE INDEX ix_activities_instance ON activities (instance_id);
