-- DurableAgents activity tables, SQLite, 1.4.0. Released: never edit; add activities-x.y.z.sql instead.
-- Model rate limits shared by every host of the database: a token bucket per provider deployment
-- (tokens and requests per minute, refilled continuously), and a lease per call in flight (for
-- MaxConcurrent; a lease whose host died expires).
CREATE TABLE IF NOT EXISTS llm_limits (deployment text PRIMARY KEY, tokens REAL NOT NULL, requests REAL NOT NULL, updated_ms bigint NOT NULL);
CREATE TABLE IF NOT EXISTS llm_limit_leases (id text PRIMARY KEY, deployment text NOT NULL, tokens bigint NOT NULL, expires_ms bigint NOT NULL);
CREATE INDEX IF NOT EXISTS llm_limit_leases_deployment ON llm_limit_leases (deployment, expires_ms);
