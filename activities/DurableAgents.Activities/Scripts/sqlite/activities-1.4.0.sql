-- DurableAgents activity tables, SQLite, 1.4.0. Released: never edit; add activities-x.y.z.sql instead.
-- Model rate limits shared by every host of the database, as a provider counts them: the calls granted
-- to a deployment in the last minute (tokens settle to real usage), by lane, and whether each is still in
-- flight (for MaxConcurrent; a grant whose host died stops counting as in flight when it expires).
-- Rows older than a minute are pruned. lane: 'i' interactive, 'b' batch, 'p' what the provider reported used.
CREATE TABLE IF NOT EXISTS llm_limit_grants (id text PRIMARY KEY, deployment text NOT NULL, lane text NOT NULL, tokens bigint NOT NULL, granted_ms bigint NOT NULL, in_flight_until_ms bigint NOT NULL);
CREATE INDEX IF NOT EXISTS llm_limit_grants_window ON llm_limit_grants (deployment, granted_ms);
-- The last time a batch call was refused, per deployment (interactive calls keep to their lane while batch waits).
CREATE TABLE IF NOT EXISTS llm_limit_batch_waiting (deployment text PRIMARY KEY, refused_ms bigint NOT NULL);
