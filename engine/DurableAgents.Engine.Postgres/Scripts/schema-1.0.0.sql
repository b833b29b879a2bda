-- DurableAgents PostgreSQL schema 1.0.0. Released: never edit; add schema-x.y.z.sql instead.
-- {schema} is the task hub's schema. Times are Unix milliseconds (UTC), as in the SQLite store.
-- Payload columns (input, output, data) are text: PostgreSQL compresses values over ~2 kB and
-- moves them out of line (TOAST), so large payloads do not bloat the hot heap rows that leases
-- scan and update; updates that leave a payload unchanged do not rewrite it.

CREATE TABLE {schema}.instances (
    instance_id         text    NOT NULL PRIMARY KEY,
    execution_id        text    NOT NULL,
    name                text    NOT NULL,
    version             text,
    status              text    NOT NULL,
    input               text,
    output              text,
    custom_status       text,
    failure             text,
    created_at          bigint  NOT NULL,
    last_updated_at     bigint  NOT NULL,
    completed_at        bigint,
    parent_instance_id  text,
    history_length      bigint  NOT NULL DEFAULT 0,
    lock_owner          text,
    lock_expires_at     bigint
);
CREATE INDEX ix_instances_created ON {schema}.instances (created_at DESC, instance_id DESC);
CREATE INDEX ix_instances_status ON {schema}.instances (status, created_at);
CREATE INDEX ix_instances_name ON {schema}.instances (name, created_at);

CREATE TABLE {schema}.history (
    instance_id  text    NOT NULL,
    seq          integer NOT NULL,
    event_type   text    NOT NULL,
    timestamp    bigint  NOT NULL,
    data         text    NOT NULL,
    PRIMARY KEY (instance_id, seq)
);

CREATE TABLE {schema}.inbox (
    id            bigserial PRIMARY KEY,
    instance_id   text    NOT NULL,
    execution_id  text,
    event_type    text    NOT NULL,
    visible_at    bigint  NOT NULL,
    data          text    NOT NULL
);
CREATE INDEX ix_inbox_visible ON {schema}.inbox (visible_at, id);
CREATE INDEX ix_inbox_instance ON {schema}.inbox (instance_id, visible_at, id);

CREATE TABLE {schema}.activities (
    id               bigserial PRIMARY KEY,
    instance_id      text    NOT NULL,
    execution_id     text    NOT NULL,
    task_id          bigint  NOT NULL,
    name             text    NOT NULL,
    input            text,
    visible_at       bigint  NOT NULL,
    lock_owner       text,
    lock_expires_at  bigint,
    dequeue_count    bigint  NOT NULL DEFAULT 0
);
CREATE INDEX ix_activities_visible ON {schema}.activities (visible_at, id);
CREATE INDEX ix_activities_instance ON {schema}.activities (instance_id);
