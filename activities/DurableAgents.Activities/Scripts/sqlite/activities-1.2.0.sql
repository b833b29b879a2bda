-- DurableAgents activity tables, SQLite, 1.2.0. Released: never edit; add activities-x.y.z.sql instead.
-- Single-use approval links for hosts without the engine's store (the isolated Functions app):
-- a row per used link, kept until the link would have expired.
CREATE TABLE IF NOT EXISTS used_tokens (token_id text PRIMARY KEY, expires_ms bigint NOT NULL);
CREATE INDEX IF NOT EXISTS used_tokens_expiry ON used_tokens (expires_ms);
