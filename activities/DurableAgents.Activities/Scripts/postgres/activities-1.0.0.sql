-- DurableAgents activity tables, PostgreSQL, 1.0.0. Released: never edit; add activities-x.y.z.sql instead.
-- IF NOT EXISTS: a database whose tables an earlier, unversioned build created is adopted as is.
-- memory_facts comes in 1.1.0.
CREATE TABLE IF NOT EXISTS {schema}.llm_attempts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    instance_id text NOT NULL, workflow text NOT NULL, task_key text NOT NULL, attempt bigint NOT NULL,
    profile text NOT NULL, provider text NOT NULL, model text NOT NULL, outcome text NOT NULL,
    input_tokens bigint NOT NULL, output_tokens bigint NOT NULL, latency_ms bigint NOT NULL,
    cost_micros bigint NOT NULL, at_ms bigint NOT NULL,
    UNIQUE (instance_id, task_key, attempt));
CREATE INDEX IF NOT EXISTS llm_attempts_workflow ON {schema}.llm_attempts (workflow);
CREATE TABLE IF NOT EXISTS {schema}.llm_reservations (
    instance_id text NOT NULL, task_key text NOT NULL, tokens bigint NOT NULL, cost_micros bigint NOT NULL,
    settled integer NOT NULL, PRIMARY KEY (instance_id, task_key));
CREATE TABLE IF NOT EXISTS {schema}.agent_messages (
    hash text PRIMARY KEY, parent text NULL, position bigint NOT NULL, body text NOT NULL);
