-- DurableAgents SQLite schema 1.1.0. Released: never edit; add schema-x.y.z.sql instead.
-- Single-use tokens (approval links): a token id is consumed once; expired rows are pruned.
CREATE TABLE consumed_tokens (
    token_id    TEXT    NOT NULL PRIMARY KEY,
    expires_at  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX ix_consumed_tokens_expires ON consumed_tokens (expires_at);
