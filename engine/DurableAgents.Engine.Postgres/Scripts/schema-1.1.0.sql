-- DurableAgents PostgreSQL schema 1.1.0. Released: never edit; add schema-x.y.z.sql instead.
-- Single-use tokens (approval links): a token id is consumed once; expired rows are pruned.
CREATE TABLE {schema}.consumed_tokens (
    token_id    text    NOT NULL PRIMARY KEY,
    expires_at  bigint  NOT NULL
);
CREATE INDEX ix_consumed_tokens_expires ON {schema}.consumed_tokens (expires_at);
