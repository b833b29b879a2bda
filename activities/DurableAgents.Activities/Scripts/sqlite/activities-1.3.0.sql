-- DurableAgents activity tables, SQLite, 1.3.0. Released: never edit; add activities-x.y.z.sql instead.
-- Write-ahead model attempts: a row is committed (outcome 'in-flight', with the host that sends it and
-- the call's estimate) before each HTTP request leaves, then settled with the real usage. A row whose
-- host died, or whose task ran again, becomes 'interrupted' and keeps its estimate, which counts
-- against the instance's budget. response_id is a background response the provider accepted, so a
-- re-executed call resumes it instead of generating again ("<n>:<continuation token>", n = the call's n-th request).
ALTER TABLE llm_attempts ADD COLUMN host text NULL;
ALTER TABLE llm_attempts ADD COLUMN est_tokens bigint NOT NULL DEFAULT 0;
ALTER TABLE llm_attempts ADD COLUMN est_cost_micros bigint NOT NULL DEFAULT 0;
ALTER TABLE llm_attempts ADD COLUMN response_id text NULL;
CREATE INDEX llm_attempts_open ON llm_attempts (host) WHERE outcome IN ('in-flight', 'interrupted');
CREATE INDEX llm_attempts_task ON llm_attempts (instance_id, task_key);
