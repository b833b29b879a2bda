-- DurableAgents activity tables, PostgreSQL, 1.5.0. Released: never edit; add activities-x.y.z.sql instead.
-- Calls waiting for a rate-limited deployment (one row per waiting call, gone when it is granted or
-- its wait expires): while an interactive call waits, batch calls keep to their share, so the next
-- free capacity goes to the person. first_ms: when it was first refused; until_ms: when it stops counting.
CREATE TABLE IF NOT EXISTS {schema}.llm_limit_waiters (deployment text NOT NULL, id text NOT NULL, lane text NOT NULL, first_ms bigint NOT NULL, until_ms bigint NOT NULL, PRIMARY KEY (deployment, id));
-- Who waited: one row per call granted after waiting (the dashboard's cost page; pruned after a day).
CREATE TABLE IF NOT EXISTS {schema}.llm_limit_waits (deployment text NOT NULL, instance_id text NOT NULL, workflow text NOT NULL, lane text NOT NULL, waited_ms bigint NOT NULL, granted_ms bigint NOT NULL);
CREATE INDEX IF NOT EXISTS llm_limit_waits_granted ON {schema}.llm_limit_waits (granted_ms);
