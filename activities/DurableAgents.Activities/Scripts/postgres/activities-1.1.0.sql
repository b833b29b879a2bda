-- DurableAgents activity tables, PostgreSQL, 1.1.0. Released: never edit; add activities-x.y.z.sql instead.
-- Long-term memory facts. The embedding column is added by FactStore at first use: its type
-- follows DurableAgents:Memory (vector(n) with pgvector, a blob otherwise). IF NOT EXISTS adopts
-- the table an earlier, unversioned build created (with its embedding column).
CREATE TABLE IF NOT EXISTS {schema}.memory_facts (
    id text PRIMARY KEY, scope text NOT NULL, text text NOT NULL, priority bigint NOT NULL, version bigint NOT NULL,
    updated_ms bigint NOT NULL, expires_ms bigint NULL, deleted bigint NOT NULL);
CREATE INDEX IF NOT EXISTS memory_facts_scope ON {schema}.memory_facts (scope, deleted);
